#!/usr/bin/env bash
# The shape of Enterprise Gateway's spark_python_yarn_cluster/bin/run.sh: SPARK_OPTS eval'ed,
# --proxy-user when impersonating, the launcher from the kernelspec's scripts/ directory.
if [ "${EG_IMPERSONATION_ENABLED}" = "True" ]; then
        IMPERSONATION_OPTS="--proxy-user ${KERNEL_USERNAME:-UNSPECIFIED}"
else
        IMPERSONATION_OPTS=""
fi
if [ -z "${SPARK_HOME}" ]; then
  echo "SPARK_HOME must be set to the location of a Spark distribution!"
  exit 1
fi
PROG_HOME="$(cd "`dirname "$0"`"/..; pwd)"
eval exec \
     "${SPARK_HOME}/bin/spark-submit" \
     "${SPARK_OPTS}" \
     "${IMPERSONATION_OPTS}" \
     "${PROG_HOME}/scripts/launch_ipykernel.py" \
     "${LAUNCH_OPTS}" \
     "$@"
