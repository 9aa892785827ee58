#!/usr/bin/env bash
# Submit eg's kernel launcher as a Spark application in YARN cluster mode.
#   run.sh LAUNCHER [launcher arguments...]
# SPARK_OPTS (the kernelspec's, plus what eg-yarn appends: queue, memory, node label, the launch
# key file) and KERNEL_EXTRA_SPARK_OPTS are split on whitespace, never eval'ed: request values
# cannot reach a shell.
set -euf
if [ -z "${SPARK_HOME:-}" ]; then
  echo "SPARK_HOME must be set to the location of a Spark distribution" >&2
  exit 1
fi
launcher=$1
shift
impersonation=()
if [ "${EG_IMPERSONATION_ENABLED:-False}" = "True" ]; then
  impersonation=(--proxy-user "${KERNEL_USERNAME:?}")
fi
# shellcheck disable=SC2086
# The launcher's Spark-context extension travels with it (--py-files: beside it in the driver).
exec "${SPARK_HOME}/bin/spark-submit" ${SPARK_OPTS:-} ${KERNEL_EXTRA_SPARK_OPTS:-} \
  --name "${KERNEL_ID:?}" "${impersonation[@]}" --py-files "$(dirname "$launcher")/eg_spark_context.py" \
  "$launcher" "$@"
