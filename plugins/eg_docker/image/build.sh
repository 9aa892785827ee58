#!/usr/bin/env bash
# Build eg's default Python kernel image (the image_name of eg-docker's python_docker kernelspec)
# on the Docker engine your `docker` command talks to (DOCKER_HOST):
#
#   bash plugins/eg_docker/image/build.sh                      # -> eg/kernel-py:local
#   bash plugins/eg_docker/image/build.sh --tag registry.example.org/eg/kernel-py:1 --base debian:bookworm
#   bash plugins/eg_docker/image/build.sh -- --network host    # after --: more `docker build` options
#   bash plugins/eg_docker/image/build.sh --language r          # -> eg/kernel-r:local, FROM eg/kernel-py:local
#
# --base is any Debian-like image with python3 and its venv module (default python:3.12-slim-bookworm).
# pip inside the build trusts this host's CA bundle, so it works behind a TLS-intercepting proxy.
# ci/setup.sh builds the test image with this script too (from a debootstrap base, no registry).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
TAG=""
BASE=""
LANGUAGE=python
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) TAG="$2"; shift 2 ;;
        --base) BASE="$2"; shift 2 ;;
        --language) LANGUAGE="$2"; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "usage: $0 [--language python|r] [--tag IMAGE] [--base IMAGE] [-- docker build options]" >&2; exit 2 ;;
    esac
done
case "$LANGUAGE" in
    # The R image is the Python image (its launcher, its Python) plus Debian's R and IRkernel.
    python) DOCKERFILE="$HERE/Dockerfile"; TAG="${TAG:-eg/kernel-py:local}"; BASE="${BASE:-python:3.12-slim-bookworm}" ;;
    r) DOCKERFILE="$HERE/Dockerfile.r"; TAG="${TAG:-eg/kernel-r:local}"; BASE="${BASE:-eg/kernel-py:local}" ;;
    *) echo "build.sh: --language must be python or r, not '$LANGUAGE'" >&2; exit 2 ;;
esac

ca_bundle() {
    for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
        [ -s "$f" ] && { echo "$f"; return; }
    done
    python3 -c 'import certifi; print(certifi.where())' 2>/dev/null \
        || { echo "build.sh: no CA bundle found for pip (install ca-certificates)" >&2; exit 1; }
}

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$DOCKERFILE" "$ctx/Dockerfile"
cp "$HERE/bootstrap-kernel.sh" "$REPO/kernelspecs/launcher/launch_ipykernel.py" "$ctx/"
cp "$(ca_bundle)" "$ctx/host-ca.crt"
DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" -t "$TAG" "${EXTRA[@]}" "$ctx"
echo "build.sh: built $TAG" >&2
