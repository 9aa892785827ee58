"""Spark executors as pods of the real cluster, from eg's Spark kernel image (issue 21, groundwork).

A real pyspark driver (this machine's Python, client mode, ``k8s://`` master) asks the real
Kubernetes 1.20 control plane for two executor pods of ``EG_K8S_SPARK_IMAGE`` (built by
ci/setup.sh from ../spark_image), on the pod network: the driver binds and advertises the host's
address on the pod network's bridge (EG_K8S_HOST_IP), which executor pods reach, and
``spark.shuffle.readHostLocalDisk=false`` (on one node, Spark would read another executor's
shuffle files from its disk, which is in the other pod's filesystem: FetchFailedException). A job
runs on them; stopping the session removes them. ``spark_python_kubernetes`` (test_spark_kubernetes.py)
runs the driver as the kernel pod instead.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

from kubernetes import watch

DRIVER = textwrap.dedent("""
    import sys, time
    from pyspark.sql import SparkSession
    master, image, namespace, label, host = sys.argv[1:]
    spark = (SparkSession.builder.master(master)
             .config("spark.kubernetes.container.image", image)
             .config("spark.kubernetes.container.image.pullPolicy", "Never")
             .config("spark.kubernetes.namespace", namespace)
             .config("spark.kubernetes.executor.label.eg-spark-test", label)
             .config("spark.kubernetes.executor.request.cores", "100m")
             .config("spark.executor.instances", "2")
             .config("spark.executor.memory", "512m")
             .config("spark.shuffle.readHostLocalDisk", "false")
             .config("spark.driver.host", host)
             .config("spark.driver.bindAddress", host)
             .getOrCreate())
    tracker = spark.sparkContext.statusTracker()
    while len(tracker.getExecutorInfos()) < 3:  # the driver and two executors
        time.sleep(0.2)
    print("READY", flush=True)
    sys.stdin.readline()
    print(spark.range(10**7).selectExpr("sum(id)").collect()[0][0], flush=True)
    spark.stop()
""")


def test_spark_job_runs_on_executor_pods_that_stopping_removes(tmp_path, cluster, core, namespace, spark_runtime):
    (tmp_path / "driver.py").write_text(DRIVER)
    label = uuid.uuid4().hex[:12]
    selector = f"eg-spark-test={label}"
    master = f"k8s://https://127.0.0.1:{cluster['EG_K8S_APISERVER_PORT']}"
    env = {"KUBECONFIG": cluster["KUBECONFIG"], "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with open(tmp_path / "driver.log", "wb") as log:
        driver = subprocess.Popen(
            [sys.executable, str(tmp_path / "driver.py"), master, cluster["EG_K8S_SPARK_IMAGE"], namespace, label,
             cluster["EG_K8S_HOST_IP"]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
        )
    try:
        assert driver.stdout.readline() == "READY\n", (tmp_path / "driver.log").read_text()[-3000:]
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        assert len(pods) == 2 and all(p.status.phase == "Running" and not p.spec.host_network for p in pods)
        assert all(p.metadata.labels["spark-role"] == "executor" for p in pods)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        assert driver.stdout.readline() == f"{sum(range(10**7))}\n"
        assert driver.wait(120) == 0
        stream = watch.Watch()
        if core.list_namespaced_pod(namespace, label_selector=selector).items:
            for event in stream.stream(core.list_namespaced_pod, namespace, label_selector=selector, timeout_seconds=120):
                if event["type"] == "DELETED" and not core.list_namespaced_pod(namespace, label_selector=selector).items:
                    stream.stop()
        assert core.list_namespaced_pod(namespace, label_selector=selector).items == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdin.close()
        driver.stdout.close()
        core.delete_collection_namespaced_pod(namespace, label_selector=selector, grace_period_seconds=0)
