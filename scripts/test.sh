#!/usr/bin/env bash
# Run eg's tests: install eg-core, every plugin and the test tools into .venv, prepare the
# services the plugin tests use (each plugin's ci/setup.sh), then pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
packages=(-e ".[test]")
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && packages+=(-e "$plugin[test]")
done
.venv/bin/python -m pip install -q "${packages[@]}"
for setup in plugins/*/ci/setup.sh; do
  [ -f "$setup" ] && bash "$setup"
done
# pytest exits 5 when it collected no test: that fails this script like any other failure.
exec .venv/bin/python -m pytest "$@"
