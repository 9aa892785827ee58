#!/usr/bin/env bash
# Build eg's Spark kernel image on the Docker engine your `docker` command talks to (DOCKER_HOST):
#
#   bash plugins/eg_k8s/spark_image/build.sh                     # -> eg/kernel-spark:local, FROM eg/kernel-py:local
#   bash plugins/eg_k8s/spark_image/build.sh --tag T --base B -- --network host
#
# --base is eg's Python kernel image (plugins/eg_docker/image/build.sh). pyspark and py4j come as
# wheels built on this host at the versions constraints.txt pins (pip's cache keeps them), Debian's
# openjdk-17-jre-headless from the base's apt sources through this host's CA bundle.
# eg-k8s's ci/setup.sh builds it once per machine, keyed by its inputs (spark_image_key).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
TAG="eg/kernel-spark:local"
BASE="eg/kernel-py:local"
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) TAG="$2"; shift 2 ;;
        --base) BASE="$2"; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "usage: $0 [--tag IMAGE] [--base IMAGE] [-- docker build options]" >&2; exit 2 ;;
    esac
done

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$HERE/Dockerfile" "$HERE/spark-entrypoint.sh" "$REPO/kernelspecs/launcher/launch_ipykernel.py" \
   "$REPO/kernelspecs/launcher/eg_spark_context.py" "$ctx/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
python3 -m pip wheel -q --no-deps -c "$REPO/constraints.txt" -w "$ctx/wheels" pyspark py4j >&2
DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" -t "$TAG" "${EXTRA[@]}" "$ctx"
echo "build.sh: built $TAG" >&2
