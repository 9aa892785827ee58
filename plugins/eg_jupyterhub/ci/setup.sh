#!/bin/sh
# Setup for the eg-jupyterhub tests (a real JupyterHub). Idempotent; the main .ci/run calls it.
#
#   - configurable-http-proxy, the Hub's proxy, from npm at a known-good version (Node.js and npm
#     from Debian when missing); jupyterhub itself is a Python test dependency of this plugin
set -eu

CHP_VERSION=5.3.0

if command -v configurable-http-proxy >/dev/null 2>&1 \
    && [ "$(configurable-http-proxy --version 2>/dev/null)" = "$CHP_VERSION" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "eg-jupyterhub setup: installing nodejs npm"
    exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    exec 7>&-
fi
echo "eg-jupyterhub setup: installing configurable-http-proxy $CHP_VERSION"
npm install -g --silent "configurable-http-proxy@$CHP_VERSION" >/dev/null
