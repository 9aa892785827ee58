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
# Without test paths, the full run is three pytest processes side by side: the tests that need
# no service, the Kubernetes cluster's, and the other services' (see below).
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
# setuptools tells of every editable install ("Editable installation ... be careful with folders
# ... with the same name"): information for package authors, not a problem of this checkout.
PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/python" -m pip install -q "${pins[@]}" "${packages[@]}"
if [ -n "$fast" ]; then
  # pytest exits 5 when it collected no test: that fails this script like any other failure.
  exec "$venv/bin/python" -m pytest -m "not service" -n auto "$@"
fi
setups=(plugins/*/ci/setup.sh)
kubernetes_setup=plugins/eg_k8s/ci/setup.sh
chosen=""
for arg in "$@"; do
  case "$arg" in -*) ;; *) chosen=1 ;; esac
done
if [ -n "$newest" ] || [ -n "$chosen" ]; then
  # Chosen tests, or the newest versions: every service up first, then one pytest.
  for setup in "${setups[@]}"; do bash "$setup"; done
  EG_K8S_INSTANCE=2 bash "$kubernetes_setup"  # the second cluster (tests/test_k8s_clusters.py)
fi
# pytest exits 5 when it collected no test: that fails this script like any other failure.
if [ -n "$chosen" ] && [ -z "$newest" ]; then
  exec "$venv/bin/python" -m pytest "$@"
fi
if [ -z "$newest" ]; then
  # The whole suite, in three pytest processes side by side (conftest.py marks the tests):
  #   - the tests that need no service, started at once;
  #   - the Kubernetes clusters' tests, after their setups (the cluster, and the second one
  #     beside it for the tests of several clusters, started side by side; on a fresh machine
  #     the first builds Kubernetes, about 12 minutes, while the other parts run, and the second
  #     waits for that build);
  #   - the other services' tests, after their setups, in the foreground.
  # Each part must collect tests and pass; the other two parts' reports follow the foreground's.
  logs=$(mktemp -d)
  "$venv/bin/python" -m pytest -m "not service" "$@" > "$logs/core" 2>&1 &
  core_pid=$!
  kubernetes_tests() {
    EG_K8S_INSTANCE=2 bash "$kubernetes_setup" > /dev/null &
    local second=$!
    bash "$kubernetes_setup" > /dev/null || { wait "$second"; return 1; }
    wait "$second" || return 1
    "$venv/bin/python" -m pytest -m "service and kubernetes" "$@"
  }
  kubernetes_tests "$@" > "$logs/kubernetes" 2>&1 &
  kubernetes_pid=$!
  other_services() {
    for setup in "${setups[@]}"; do
      [ "$setup" = "$kubernetes_setup" ] || bash "$setup" || return 1
    done
    "$venv/bin/python" -m pytest -m "service and not kubernetes" "$@"
  }
  status=0 kubernetes_status=0 core_status=0
  other_services "$@" || status=$?
  wait "$kubernetes_pid" || kubernetes_status=$?
  wait "$core_pid" || core_status=$?
  echo "==== the Kubernetes cluster's tests (run beside the above): exit $kubernetes_status ===="
  cat "$logs/kubernetes"
  echo "==== the tests that need no service (run beside the above): exit $core_status ===="
  cat "$logs/core"
  rm -rf "$logs"
  [ "$status" -eq 0 ] && [ "$kubernetes_status" -eq 0 ] && [ "$core_status" -eq 0 ] || exit 1
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
