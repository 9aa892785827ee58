#!/usr/bin/env bash
# Build eg's Spark kernel image on the Docker engine your `docker` command talks to (DOCKER_HOST):
#
#   bash plugins/eg_k8s/spark_image/build.sh [--toree] [TAG [BASE]] [-- docker build options]
#
# TAG defaults to eg/kernel-spark:local; BASE, eg's Python kernel image
# (plugins/eg_docker/image/build.sh), to eg/kernel-py:local. pyspark and py4j come as
# wheels built on this host at the versions constraints.txt pins (pip's cache keeps them), Debian's
# openjdk-17-jre-headless from the base's apt sources through this host's CA bundle.
# With --toree it builds the Toree image (Dockerfile.toree) instead: TAG defaults to
# eg/kernel-toree:local, BASE to the Spark image, eg/kernel-spark:local; its Spark 3.5 and Toree
# come as wheels at the versions toree-requirements.txt pins.
# eg-k8s's ci/setup.sh builds both once per machine and inputs (spark_image).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
toree=
if [ "${1:-}" = --toree ]; then toree=1; shift; fi
positional=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do positional+=("$1"); shift; done
[ $# -gt 0 ] && shift
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
if [ -n "$toree" ]; then
    TAG="${positional[0]:-eg/kernel-toree:local}"
    BASE="${positional[1]:-eg/kernel-spark:local}"
    cp "$HERE/Dockerfile.toree" "$ctx/Dockerfile"
    cp "$HERE/spark-entrypoint.sh" "$ctx/"
    python3 -m pip wheel -q --no-deps -r "$HERE/toree-requirements.txt" -w "$ctx/wheels" >&2
else
    TAG="${positional[0]:-eg/kernel-spark:local}"
    BASE="${positional[1]:-eg/kernel-py:local}"
    cp "$HERE/Dockerfile" "$HERE/spark-entrypoint.sh" "$REPO/kernelspecs/launcher/launch_ipykernel.py" \
       "$REPO/kernelspecs/launcher/eg_spark_context.py" "$ctx/"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
    python3 -m pip wheel -q --no-deps -c "$REPO/constraints.txt" -w "$ctx/wheels" pyspark py4j >&2
fi
DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" -t "$TAG" "$@" "$ctx"
echo "build.sh: built $TAG" >&2
