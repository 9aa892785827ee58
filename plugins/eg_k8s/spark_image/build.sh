#!/usr/bin/env bash
# Build eg's Spark kernel image on the Docker engine your `docker` command talks to (DOCKER_HOST):
#
#   bash plugins/eg_k8s/spark_image/build.sh [TAG [BASE]] [-- docker build options]
#
# TAG defaults to eg/kernel-spark:local; BASE, eg's Python kernel image
# (plugins/eg_docker/image/build.sh), to eg/kernel-py:local. pyspark and py4j come as
# wheels built on this host at the versions constraints.txt pins (pip's cache keeps them), Debian's
# openjdk-17-jre-headless from the base's apt sources through this host's CA bundle.
# eg-k8s's ci/setup.sh builds it once per machine and inputs (spark_image).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
positional=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do positional+=("$1"); shift; done
[ $# -gt 0 ] && shift
TAG="${positional[0]:-eg/kernel-spark:local}"
BASE="${positional[1]:-eg/kernel-py:local}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$HERE/Dockerfile" "$HERE/spark-entrypoint.sh" "$REPO/kernelspecs/launcher/launch_ipykernel.py" \
   "$REPO/kernelspecs/launcher/eg_spark_context.py" "$ctx/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
python3 -m pip wheel -q --no-deps -c "$REPO/constraints.txt" -w "$ctx/wheels" pyspark py4j >&2
DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" -t "$TAG" "$@" "$ctx"
echo "build.sh: built $TAG" >&2
