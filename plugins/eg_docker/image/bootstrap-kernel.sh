#!/bin/sh
# Enterprise Gateway's container entry point convention (bootstrap-kernel.sh): the gateway puts
# the launch arguments into the environment and runs the image's default command.
# EG_LAUNCH_KEY (eg's per-kernel secret) is read by the launcher itself from the environment.
set -e
if [ -z "$KERNEL_ID" ] || [ -z "$RESPONSE_ADDRESS" ]; then
    echo "bootstrap-kernel.sh: KERNEL_ID and RESPONSE_ADDRESS must be set" >&2
    exit 2
fi
LANGUAGE="$(echo "${KERNEL_LANGUAGE:-python}" | tr '[:upper:]' '[:lower:]')"
case "$LANGUAGE" in
    python) ;;
    r) command -v R >/dev/null || { echo "bootstrap-kernel.sh: this image has no R (use eg/kernel-r)" >&2; exit 2; } ;;
    *) echo "bootstrap-kernel.sh: this image has no kernel for language '$KERNEL_LANGUAGE'" >&2; exit 2 ;;
esac
exec python /usr/local/share/eg/launch_ipykernel.py \
    --kernel-id "$KERNEL_ID" \
    --port-range "${PORT_RANGE:-0..0}" \
    --response-address "$RESPONSE_ADDRESS" \
    --public-key "${PUBLIC_KEY:-none}" \
    --ip "${KERNEL_IP:-0.0.0.0}" \
    --kernel-language "$LANGUAGE" \
    --kernel-class-name "${KERNEL_CLASS_NAME:-ipykernel.ipkernel.IPythonKernel}"
