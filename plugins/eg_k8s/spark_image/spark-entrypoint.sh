#!/bin/sh
# Spark's executor pods run the image with the argument "executor" (the contract of Spark's own
# images' entrypoint.sh, with the SPARK_* variables Spark sets on the pod); anything else runs as given.
# Spark's jars are $SPARK_HOME's (the Toree image's Spark 3.5), else those of the kernel's pyspark.
set -e
if [ "${1:-}" = "executor" ]; then
  jars="${SPARK_HOME:-$(python3 -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}/jars"
  # shellcheck disable=SC2046
  exec java -Xms"${SPARK_EXECUTOR_MEMORY:-1g}" -Xmx"${SPARK_EXECUTOR_MEMORY:-1g}" \
    $(env | sed -n 's/^SPARK_JAVA_OPT_[0-9]*=//p') -cp "$jars/*" \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" --cores "$SPARK_EXECUTOR_CORES" \
    --app-id "$SPARK_APPLICATION_ID" --hostname "$SPARK_EXECUTOR_POD_IP" \
    --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" --podName "$SPARK_EXECUTOR_POD_NAME"
fi
exec "$@"
