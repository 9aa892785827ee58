"""Spark kernels on the real cluster (issue 21, point 2): ``spark_python_kubernetes`` runs the kernel
pod as the Spark driver (client mode, eg's launcher with a lazy ``spark``/``sc``), executors are
pods of eg's Spark image labelled with the kernel's and the gateway's labels, owned by the driver
pod. One gateway and one Spark kernel are shared by the module's checks (Spark JVMs are slow on
two cores). Driver and executors are on the pod network (``k8s_helpers.gateway_args``), the
master is the in-cluster ``kubernetes`` Service; one check runs them on the node's network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

from k8s_helpers import gateway_args, interrupt_a_running_job, left_behind, pod_of, run, scala_job, spark_args
from eg_k8s._request import quantity
from eg_k8s._spark import SparkDriver, executor_requests

pytestmark = pytest.mark.timeout(600)
KERNELSPEC = "spark_python_kubernetes"
SCALA_KERNELSPEC = "spark_scala_kubernetes"
SUM = sum(range(10**7))


@pytest.fixture(scope="module")
def spark_gateway(tmp_path_factory, kernel_spec_dirs, cluster, namespace, gateway_id):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), *gateway_args(cluster, namespace, gateway_id), *spark_args(cluster),
                        kernel_spec_dirs=kernel_spec_dirs)
    yield gw
    gw.stop()


async def started(gw, env: dict | None = None, name: str = KERNELSPEC) -> str:
    """The id of a kernel of ``name`` started through ``gw`` (it must start)."""
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": name, "env": env or {}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def executors(core, namespace: str, kernel_id: str) -> list:
    pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kernel_id},spark-role=executor")
    return [p for p in pods.items if not p.metadata.deletion_timestamp]


async def running_executors(core, namespace: str, kernel_id: str, count: int) -> list:
    """The kernel's executor pods once ``count`` of them run, seen through the API's watch."""
    from kubernetes import watch

    def wait() -> list:
        stream = watch.Watch()
        for _ in stream.stream(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kernel_id},spark-role=executor",
                               timeout_seconds=300):
            pods = [p for p in core.list_namespaced_pod(namespace, label_selector=f"kernel_id={kernel_id},spark-role=executor").items
                    if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
            if len(pods) >= count:
                stream.stop()
                return pods
        return []

    return await asyncio.to_thread(wait)


@pytest.fixture(scope="module")
def spark_kernel(spark_gateway):
    """One Spark kernel shared by the checks (started and deleted in loops of their own)."""

    async def start() -> str:
        async with spark_gateway.client() as http:
            r = await http.post("/api/kernels", json={"name": KERNELSPEC, "env": {"KERNEL_EXECUTORS": "2", "KERNEL_EXECUTOR_MEMORY": "512m"}})
            assert r.status_code == 201, f"{r.text}\n{spark_gateway.output()[-4000:]}"
            return r.json()["id"]

    async def delete(kid: str) -> None:
        async with spark_gateway.client() as http:
            await http.delete(f"/api/kernels/{kid}")

    kid = asyncio.run(start())
    yield kid
    asyncio.run(delete(kid))


async def test_a_spark_job_runs_on_labelled_executor_pods_and_an_interrupt_cancels_it(
        spark_gateway, spark_kernel, core, namespace, gateway_id, cluster):
    kid = spark_kernel
    driver = await pod_of(core, namespace, kid)
    assert driver.spec.service_account_name == "eg-spark-driver" and not driver.spec.host_network
    role = await asyncio.to_thread(__import__("kubernetes").client.RbacAuthorizationV1Api(core.api_client).read_namespaced_role,
                                   "eg-spark-driver", namespace)
    assert [(r.resources, sorted(r.verbs)) for r in role.rules] == [
        (["pods"], ["create", "delete", "deletecollection", "get", "list", "watch"])]
    assert await executors(core, namespace, kid) == [], "the context is lazy: no executor before spark is used"
    ks = await KernelSocket.connect(spark_gateway, kid)
    try:
        msg_id = await ks.request("execute_request", {"code": 'print(spark.range(10**7).selectExpr("sum(id)").collect()[0][0])'})
        pods = await running_executors(core, namespace, kid, 2)  # while the cell runs
        assert len(pods) == 2
        for pod in pods:
            labels = pod.metadata.labels
            assert labels["kernel_id"] == kid and labels["eg.jupyter.org/gateway"] == gateway_id
            assert labels["app"] == "enterprise-gateway" and labels["component"] == "worker"
            assert [o.uid for o in pod.metadata.owner_references] == [driver.metadata.uid]
            requests = pod.spec.containers[0].resources.requests  # what quotas count for it (eg_requested_resources)
            assert {"cpus": quantity(requests["cpu"]), "memory": quantity(requests["memory"])} == executor_requests(
                SparkDriver("", "", "", 2, "512m", 1, {"spark.kubernetes.executor.request.cores": "100m"}))
            assert not pod.spec.host_network and ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(cluster["EG_K8S_POD_CIDR"])
        out = []
        while (msg := await ks.recv(timeout=300))["parent_header"].get("msg_id") != msg_id or msg["header"]["msg_type"] != "execute_reply":
            if msg["header"]["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
        assert msg["content"]["status"] == "ok" and "".join(out) == f"{SUM}\n", (msg["content"], out)

        reply = await interrupt_a_running_job(spark_gateway, ks, kid, 2, cluster["EG_K8S_HOST_IP"])
        assert reply["ename"] == "KeyboardInterrupt", reply
        out = await ks.execute("print(sc.statusTracker().getActiveJobsIds(), sc.parallelize(range(10), 2).sum())", timeout=120)
        assert out["stdout"] == "[] 45\n", out
    finally:
        await ks.close()


async def test_restart_gives_a_new_driver_and_leaves_no_executor(spark_gateway, spark_kernel, core, namespace):
    kid = spark_kernel
    before = await pod_of(core, namespace, kid)
    old = {p.metadata.name for p in await executors(core, namespace, kid)}
    assert old, "the previous check left the kernel with executors"
    async with spark_gateway.client() as http:
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
    after = await pod_of(core, namespace, kid)
    assert after.metadata.uid != before.metadata.uid
    assert await executors(core, namespace, kid) == []
    ks = await KernelSocket.connect(spark_gateway, kid)
    try:
        assert (await ks.execute("print(spark.range(100).count())", timeout=300))["stdout"] == "100\n"
    finally:
        await ks.close()
    new = {p.metadata.name for p in await executors(core, namespace, kid)}
    assert new and not new & old
    async with spark_gateway.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}


@pytest.mark.parametrize("env, status, words", [
    ({"KERNEL_EXECUTORS": "4"}, 403, "KERNEL_EXECUTORS=4 exceeds"),
    ({"KERNEL_EXECUTORS": "many"}, 400, "KERNEL_EXECUTORS must be a whole number"),
    ({"KERNEL_EXECUTOR_MEMORY": "2g"}, 403, "KERNEL_EXECUTOR_MEMORY=2g exceeds"),
    ({"KERNEL_EXECUTOR_MEMORY": "lots"}, 400, "Spark memory amount"),
    ({"KERNEL_EXECUTOR_CORES": "0"}, 400, "KERNEL_EXECUTOR_CORES must be at least 1"),
], ids=["executors-cap", "executors-malformed", "memory-cap", "memory-malformed", "cores-zero"])
async def test_executor_overrides_are_checked_before_anything_is_created(spark_gateway, core, namespace, env, status, words):
    kid = str(uuid.uuid4())
    async with spark_gateway.client() as http:
        r = await http.post("/api/kernels", json={"name": KERNELSPEC, "env": {"KERNEL_ID": kid, **env}})
        assert r.status_code == status and words in r.json()["message"], r.text
        props = (await http.get(f"/api/kernelspecs/{KERNELSPEC}")).json()["spec"]["metadata"]["parameters"]["properties"]
    assert props["KERNEL_EXECUTORS"]["maximum"] == 3 and props["KERNEL_EXECUTOR_CORES"]["maximum"] == 2
    assert await left_behind(core, namespace, kid) == {}


async def test_a_bad_image_fails_in_image_pull_and_leaves_nothing(spark_gateway, core, namespace):
    kid = str(uuid.uuid4())
    async with spark_gateway.client() as http:
        r = await http.post("/api/kernels", json={"name": KERNELSPEC, "env": {"KERNEL_ID": kid, "KERNEL_IMAGE": "eg/no-such-spark:none"}})
    assert r.status_code in (502, 504) and r.json()["message"].startswith("image_pull:"), r.text
    assert await left_behind(core, namespace, kid) == {}


async def test_a_gateway_sigkill_leaves_the_orphans_driver_and_executors_to_the_sweep(
        tmp_path, kernel_spec_dirs, cluster, namespace, core):
    gateway_id = f"eg-spark-{uuid.uuid4().hex[:8]}"
    args = [*gateway_args(cluster, namespace, gateway_id), *spark_args(cluster), "--KubernetesSettings.store_sessions=False",
            "--KubernetesSettings.orphans_at_startup=remove"]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    gw = GatewayProcess(tmp_path / "first", *args, kernel_spec_dirs=kernel_spec_dirs)
    try:
        kid = await started(gw)
        assert await run(gw, kid, "print(spark.range(10).count())", timeout=300) == "10\n"
        assert len(await executors(core, namespace, kid)) == 2
    finally:
        gw.proc.kill()
        gw.proc.wait()
        gw.stop()
    second = GatewayProcess(tmp_path / "second", *args, kernel_spec_dirs=kernel_spec_dirs)
    try:
        await second.wait_for_output(f"Removed kernel pod {namespace}/", timeout=120)
        assert await left_behind(core, namespace, kid) == {}
    finally:
        second.stop()


async def test_enterprise_gateways_spark_kernelspec_works_as_a_drop_in_and_culling_leaves_nothing(
        tmp_path, kernel_spec_dirs, cluster, namespace, gateway_id, core):
    """EG's kernel.json as it ships (process_proxy, ``bin/run.sh`` argv, SPARK_OPTS for its
    cluster mode), only the image names changed: the pod runs eg's launcher with run.sh's
    arguments, the driver in client mode; EG's SPARK_HOME and SPARK_OPTS are not the pod's.
    Once idle with no client, the culler shuts it down: no driver, no executor is left."""
    culling = ["--KernelCuller.cull_idle_timeout=5", "--KernelCuller.cull_interval=1"]
    gw = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, gateway_id), *spark_args(cluster), *culling,
                        kernel_spec_dirs=kernel_spec_dirs)
    try:
        kid = await started(gw, {"KERNEL_EXECUTORS": "1"}, "eg_spark_python_kubernetes")
        pod = await pod_of(core, namespace, kid)
        assert pod.spec.containers[0].command[:2] == ["python", "/usr/local/share/eg/launch_ipykernel.py"]
        assert not {"SPARK_HOME", "SPARK_OPTS"} & {e.name for e in pod.spec.containers[0].env}
        assert await run(gw, kid, "print(spark.range(5).count())", timeout=300) == "5\n"
        assert len(await executors(core, namespace, kid)) == 1
        await gw.wait_for_output(f'"event":"shut_down","kernel_id":"{kid}"', timeout=120)
        assert f"[kernel {kid}] culled" in gw.output()
        assert await left_behind(core, namespace, kid) == {}
    finally:
        gw.stop()


async def test_a_driver_that_cannot_be_scheduled_fails_in_schedule_and_leaves_no_pod(spark_gateway, core, namespace):
    """More CPUs than the node has (a request override): the launch fails at once naming the
    phase and the scheduler's reason; no driver pod (so no executor) and no Secret is left."""
    kid = str(uuid.uuid4())
    async with spark_gateway.client() as http:
        r = await http.post("/api/kernels", json={"name": KERNELSPEC, "env": {"KERNEL_ID": kid, "KERNEL_CPUS": "64"}})
    assert r.status_code == 502, r.text
    assert r.json()["message"].startswith("schedule:") and "Insufficient cpu" in r.json()["message"], r.text
    assert await left_behind(core, namespace, kid) == {}


async def test_executors_that_cannot_be_scheduled_leave_the_driver_waiting_until_interrupted(spark_gateway, core, namespace, cluster):
    """Executors no node takes (a node selector no node matches, in the kernelspec's spark_conf):
    the kernel runs, a job waits for executors, its pods stay Pending (Unschedulable), an
    interrupt cancels the job and the kernel goes on; deleting it leaves no executor pod."""
    kid = await started(spark_gateway, {"KERNEL_EXECUTORS": "1"}, "spark_unschedulable_executors")
    ks = await KernelSocket.connect(spark_gateway, kid)
    try:
        msg_id = await ks.request("execute_request", {"code": "sc.parallelize(range(4), 2).count()"})
        from kubernetes import watch

        def pending() -> list:
            stream = watch.Watch()
            for event in stream.stream(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kid},spark-role=executor",
                                       timeout_seconds=300):
                conditions = event["object"].status.conditions or []
                if any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions):
                    stream.stop()
                    return [event["object"]]
            return []

        stuck = await asyncio.to_thread(pending)
        assert stuck and stuck[0].status.phase == "Pending"
        async with spark_gateway.client() as http:
            assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
        while (msg := await ks.recv(timeout=120))["parent_header"].get("msg_id") != msg_id or msg["header"]["msg_type"] != "execute_reply":
            pass
        assert msg["content"]["ename"] == "KeyboardInterrupt", msg["content"]
        assert (await ks.execute("print(1 + 1)", timeout=60))["stdout"] == "2\n"
    finally:
        await ks.close()
    async with spark_gateway.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}


async def test_driver_and_executors_on_the_nodes_network(tmp_path, kernel_spec_dirs, cluster, namespace, core):
    """With ``host_network`` the driver pod and (through the executor pod template) its executors
    run on the node's network; the driver gives executors the node's address."""
    gateway_id = f"eg-spark-{uuid.uuid4().hex[:8]}"
    gw = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, gateway_id, host_network=True), *spark_args(cluster),
                        kernel_spec_dirs=kernel_spec_dirs)
    try:
        kid = await started(gw, {"KERNEL_EXECUTORS": "1"})
        assert await run(gw, kid, "print(spark.range(100).count())", timeout=300) == "100\n"
        driver = await pod_of(core, namespace, kid)
        pods = await executors(core, namespace, kid)
        assert driver.spec.host_network and len(pods) == 1 and pods[0].spec.host_network
        async with gw.client() as http:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        assert await left_behind(core, namespace, kid) == {}
    finally:
        gw.stop()


async def test_quotas_count_a_spark_kernels_executors(tmp_path, kernel_spec_dirs, cluster, namespace, core):
    """The quotas policy sees the driver plus KERNEL_EXECUTORS executor pods (512m + 384m of
    overhead each): three do not fit a 2 GiB quota, refused before anything is created; one does."""
    gateway_id = f"eg-spark-{uuid.uuid4().hex[:8]}"
    gw = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, gateway_id), *spark_args(cluster),
                        '--ResourceQuotas.per_user={"memory": "2Gi"}', kernel_spec_dirs=kernel_spec_dirs)
    try:
        kid = str(uuid.uuid4())
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": KERNELSPEC, "env": {"KERNEL_ID": kid, "KERNEL_EXECUTORS": "3"}})
        assert r.status_code == 403, r.text
        assert "this kernel asks for 2.625 GiB of memory; the limit per user is 2 GiB" in r.json()["message"], r.text
        assert await left_behind(core, namespace, kid) == {}
        kid = await started(gw, {"KERNEL_EXECUTORS": "1"})
        async with gw.client() as http:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        gw.stop()


async def test_a_scala_kernel_runs_its_job_on_executor_pods_and_leaves_nothing(spark_gateway, core, namespace, gateway_id):
    """``spark_scala_kubernetes`` (issue 21, point 3): Apache Toree 0.5.0 on Spark 3.5.9 in eg's
    Toree image, run by eg's launcher in the driver pod (client mode, as for Python). A Scala
    cell's job runs on two executor pods of the same image, labelled and owned like Python's, and
    gets the right answer; deleting the kernel leaves no driver and no executor pod."""
    kid = await started(spark_gateway, {"KERNEL_EXECUTORS": "2", "KERNEL_EXECUTOR_MEMORY": "512m"}, SCALA_KERNELSPEC)
    try:
        driver = await pod_of(core, namespace, kid)
        container = driver.spec.containers[0]
        assert container.image == "eg/kernel-toree:local" and container.command[:2] == ["python", "/usr/local/share/eg/launch_ipykernel.py"]
        ks = await KernelSocket.connect(spark_gateway, kid)
        try:
            cell = asyncio.ensure_future(ks.execute("println(sc.parallelize(1 to 100000, 4).map(_ * 2).sum.toLong)", timeout=300))
            pods = await running_executors(core, namespace, kid, 2)
            out = await cell
        finally:
            await ks.close()
        assert out["reply"]["status"] == "ok" and out["stdout"] == f"{sum(range(1, 100001)) * 2}\n", out
        assert len(pods) == 2
        for pod in pods:
            labels = pod.metadata.labels
            assert labels["kernel_id"] == kid and labels["eg.jupyter.org/gateway"] == gateway_id and labels["component"] == "worker"
            assert pod.spec.containers[0].image == "eg/kernel-toree:local"
            assert [o.uid for o in pod.metadata.owner_references] == [driver.metadata.uid]
        assert len(await executors(core, namespace, kid)) == 2
    finally:
        async with spark_gateway.client() as http:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}


async def test_a_scala_kernels_interrupt_cancels_its_job_and_restart_gives_a_new_driver(spark_gateway, core, namespace, cluster):
    """Toree under eg's launcher: an interrupt (SIGINT through the launcher) during a job whose
    tasks sleep on the executors ends the cell and cancels the job, the kernel goes on; a restart
    gives a new driver pod and none of the old executors; delete leaves nothing."""
    kid = await started(spark_gateway, {"KERNEL_EXECUTORS": "1", "KERNEL_EXECUTOR_MEMORY": "512m"}, SCALA_KERNELSPEC)
    try:
        ks = await KernelSocket.connect(spark_gateway, kid)
        try:
            reply = await interrupt_a_running_job(spark_gateway, ks, kid, 1, cluster["EG_K8S_HOST_IP"], scala_job)
            assert reply["status"] != "ok", reply
            out = await ks.execute("println(sc.statusTracker.getActiveJobIds.length + \" \" + sc.parallelize(1 to 10, 2).sum.toLong)", timeout=120)
            assert out["stdout"] == "0 55\n", out
        finally:
            await ks.close()
        before = await pod_of(core, namespace, kid)
        old = {p.metadata.name for p in await executors(core, namespace, kid)}
        assert old
        async with spark_gateway.client() as http:
            assert (await http.post(f"/api/kernels/{kid}/restart")).status_code == 200
        assert (await pod_of(core, namespace, kid)).metadata.uid != before.metadata.uid
        assert not old & {p.metadata.name for p in await executors(core, namespace, kid)}
        assert await run(spark_gateway, kid, "println(sc.parallelize(1 to 100, 2).count)", timeout=300) == "100\n"
    finally:
        async with spark_gateway.client() as http:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}
