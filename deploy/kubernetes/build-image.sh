#!/usr/bin/env bash
# Build the gateway image from this checkout: deploy/kubernetes/build-image.sh [TAG] [BASE]
#   TAG   default eg/gateway:local;  BASE  default python:3.11-slim (tests use eg/kernel-py:local)
# Uses the docker CLI's engine (DOCKER_HOST). Prints the image tag. Skips the build when an image
# of the same sources exists (label eg.sources = hash of what goes in).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="${1:-eg/gateway:local}"
BASE="${2:-python:3.11-slim}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/plugins"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/eg_core" "$REPO/kernelspecs" "$ctx/"
# Every plugin, as a package (its pyproject.toml, README.md and package directory): one image, the
# operator's kernelspecs choose the backends.
for plugin in "$REPO"/plugins/*/; do
    name="$(basename "$plugin")"
    mkdir -p "$ctx/plugins/$name"
    cp -r "$plugin/pyproject.toml" "$plugin/README.md" "$plugin/$name" "$ctx/plugins/$name/"
done
# Not copied: caches, a local install's build/ (setuptools would take its stale copies of the
# sources, as new as the fresh ones after cp) and the plugins' tests and CI scripts; the new-plugin
# template keeps its tests.
find "$ctx" \( -name __pycache__ -o -name '*.egg-info' -o \( -name tests ! -path '*/plugin_template/*' \) \) -prune -exec rm -rf {} +
: > "$ctx/pip-ca.crt"
[ -n "${PIP_CA_BUNDLE:-}" ] && cp "$PIP_CA_BUNDLE" "$ctx/pip-ca.crt"
hash="$( (cd "$ctx" && find . -type f ! -name pip-ca.crt | sort | xargs cat; echo "$BASE"; cat "$REPO/deploy/kubernetes/Dockerfile") | sha256sum | cut -c1-16)"
if [ "$(docker image inspect "$TAG" --format '{{index .Config.Labels "eg.sources"}}' 2>/dev/null)" != "$hash" ]; then
    DOCKER_BUILDKIT=0 docker build -q --network host --label "eg.sources=$hash" --build-arg "BASE=$BASE" \
        -f "$REPO/deploy/kubernetes/Dockerfile" -t "$TAG" "$ctx" >&2
fi
echo "$TAG"
