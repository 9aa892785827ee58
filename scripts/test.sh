#!/usr/bin/env bash
# Run eg's tests: install eg-core, every plugin and the test tools into .venv at the known-good
# versions (constraints.txt), prepare the services the plugin tests use (each plugin's
# ci/setup.sh), then pytest. Extra args go to pytest.
#
#   bash scripts/test.sh --fast [pytest args]
# runs the fast tier only: the tests that need no backend service and no system package beyond
# Python (no ci/setup.sh, plugins installed without their test extras), in .venv-fast, on every
# core (pytest-xdist); tests marked ``service`` (see conftest.py) are left to the full run.
#
# Without test paths, the full run is two pytest processes side by side: the tests that need a
# service, and the rest (see below).
#
#   bash scripts/test.sh --newest [pytest args]
# tests the newest versions the pyproject ranges allow instead, in a new .venv-newest; when
# the whole suite (no pytest args) passes it writes that set to constraints.txt (review and
# commit the diff: that is how the known-good set is refreshed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=.venv
pins=(-c constraints.txt)
newest=""
fast=""
if [ "${1:-}" = "--newest" ]; then
  shift
  newest=1 venv=.venv-newest pins=(--upgrade --upgrade-strategy eager)
  rm -rf "$venv"
elif [ "${1:-}" = "--fast" ]; then
  shift
  fast=1 venv=.venv-fast
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
packages=(-e ".[test]")
# pyspark (the Spark context tests, with Java from .ci/run) is ~450 MB: the fast tier has no Spark test
[ -n "$fast" ] || packages=(-e ".[test,spark]")
for plugin in plugins/*/; do
  if [ -f "$plugin/pyproject.toml" ]; then
    if [ -n "$fast" ]; then packages+=(-e "$plugin"); else packages+=(-e "$plugin[test]"); fi
  fi
done
"$venv/bin/python" -m pip install -q "${pins[@]}" "${packages[@]}"
if [ -n "$fast" ]; then
  # pytest exits 5 when it collected no test: that fails this script like any other failure.
  exec "$venv/bin/python" -m pytest -m "not service" -n auto "$@"
fi
for setup in plugins/*/ci/setup.sh; do
  [ -f "$setup" ] && bash "$setup"
done
# pytest exits 5 when it collected no test: that fails this script like any other failure.
if [ -z "$newest" ]; then
  for arg in "$@"; do
    case "$arg" in -*) ;; *) exec "$venv/bin/python" -m pytest "$@" ;; esac  # chosen tests: one run
  done
  # The whole suite: the tests that need a service (conftest.py marks them) in one pytest, the
  # others beside it in a second, so the backends' waits overlap the core's tests. Each part must
  # collect tests and pass; the second part's report follows the first's.
  beside=$(mktemp)
  "$venv/bin/python" -m pytest -m "not service" "$@" > "$beside" 2>&1 &
  beside_pid=$!
  status=0 beside_status=0
  "$venv/bin/python" -m pytest -m service "$@" || status=$?
  wait "$beside_pid" || beside_status=$?
  echo "==== the tests that need no service (run beside the above): exit $beside_status ===="
  cat "$beside"
  rm -f "$beside"
  [ "$status" -eq 0 ] && [ "$beside_status" -eq 0 ] || exit 1
  exit 0
fi
"$venv/bin/python" -m pytest "$@"
if [ $# -gt 0 ]; then
  echo "scripts/test.sh: passed with the newest versions, but only part of the suite ran (pytest args given): constraints.txt not rewritten"
  exit 0
fi
{
  echo "# eg's known-good set: every package the gateway, the plugins and the tests install, at the"
  echo "# versions the whole test suite last passed with. Written by 'bash scripts/test.sh --newest'."
  "$venv/bin/python" -m pip freeze --exclude-editable | grep -v -e '^#' -e '^-e ' -e '^eg-'
} > constraints.txt
echo "scripts/test.sh: all tests passed with the newest versions; constraints.txt now pins them (git diff constraints.txt)"
