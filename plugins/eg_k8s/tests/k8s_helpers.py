"""Helpers of eg-k8s's tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid

from kubernetes import client

from eg_core.testing import KernelSocket

KINDS = ("pods", "secrets", "services", "configmaps")


SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Run in a kernel: does it hold a service-account token, and what does the API server answer it
# for the Secrets of ``namespace`` (it has no credentials to send).
_CLUSTER_ACCESS = """
import json, os, ssl, urllib.error, urllib.request
answer = {{"token": os.path.exists({token!r})}}
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    urllib.request.urlopen("https://{host}:{port}/api/v1/namespaces/{namespace}/secrets", context=context, timeout=20)
    answer["secrets"] = 200
except urllib.error.HTTPError as exc:
    answer["secrets"] = exc.code
print(json.dumps(answer))
"""


def api_client_of(kubeconfig: str) -> client.ApiClient:
    """A client of the cluster ``kubeconfig`` names (its current context)."""
    from kubernetes import config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


def scratch_namespace(core: client.CoreV1Api, prefix: str):
    """For a fixture: a new namespace ``<prefix>-<random>`` of the cluster ``core`` talks to,
    yielded, then deleted."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def cluster_access_code(cluster, namespace: str) -> str:
    """Code for a kernel (on the pod network or the node's) that prints ``{"token": bool, "secrets": status}``."""
    return _CLUSTER_ACCESS.format(token=SA_TOKEN, host=cluster["EG_K8S_HOST_IP"], port=cluster["EG_K8S_APISERVER_PORT"], namespace=namespace)


def gateway_args(cluster, namespace: str, gateway_id: str, *extra: str, kubeconfig: str | None = None,
                 host_network: bool = False) -> list[str]:
    """A gateway on the test cluster with kernels in ``namespace``: on the pod network, dialled
    on their pod IP and calling back the gateway on the host's address there (EG_K8S_HOST_IP), as
    in any cluster. ``host_network``: on the node's network instead, dialled and bound on loopback
    (the node's own address is never a target here)."""
    if host_network:
        network = ["--KubernetesSettings.host_network=True", "--KubernetesSettings.kernel_host=127.0.0.1",
                   "--KubernetesSettings.kernel_bind_ip=127.0.0.1", "--ResponseListener.response_address=127.0.0.1:0"]
    else:
        network = [f"--ResponseListener.response_address={cluster['EG_K8S_HOST_IP']}:0"]
    return [
        f"--KubernetesSettings.kubeconfig={kubeconfig or cluster['KUBECONFIG']}",
        f"--KubernetesSettings.namespace={namespace}",
        f"--KubernetesSettings.gateway_id={gateway_id}",
        *network,
        "--KubernetesSettings.image_pull_policy=IfNotPresent",
        "--Gateway.launch_timeout=90",
        *extra,
    ]


def kubernetes_service(cluster) -> str:
    """The in-cluster address of the API server: the ``kubernetes`` Service (the first address of
    the Service range), as pods reach it on either network (kube-proxy); there is no cluster DNS
    here for ``kubernetes.default.svc``."""
    return f"{ipaddress.ip_network(cluster['EG_K8S_SERVICE_CIDR'])[1]}:443"


def spark_args(cluster) -> list[str]:
    """The Spark settings of the test gateway: the master is the in-cluster ``kubernetes``
    Service, executors request a tenth of a core (two cores are shared by every test); the
    request may also override the driver's CPUs (to ask for more than the node has)."""
    return [
        f"--KubernetesSettings.spark_master=k8s://https://{kubernetes_service(cluster)}",
        "--KubernetesSettings.spark_conf=" + json.dumps({"spark.kubernetes.executor.request.cores": "100m", "spark.ui.enabled": "false"}),
        "--KubernetesSettings.executor_memory=512m",
        "--KubernetesSettings.request_overrides=" + json.dumps(["executors", "executor_memory", "executor_cores", "image", "cpus"]),
        "--KubernetesSettings.allowed_images=" + json.dumps(["eg/*"]),
        "--KubernetesSettings.max_executors=3", "--KubernetesSettings.max_executor_memory=1g",
        "--KubernetesSettings.max_executor_cores=2",
    ]


async def left_behind(core: client.CoreV1Api, namespace: str, kernel_id: str) -> dict[str, list[str]]:
    """What exists in ``namespace`` (and as namespaces) labelled with the kernel id."""
    selector = f"kernel_id={kernel_id}"

    def names(kind: str) -> list[str]:
        listing = getattr(core, f"list_namespaced_{ {'pods': 'pod', 'secrets': 'secret', 'services': 'service', 'configmaps': 'config_map'}[kind] }")(
            namespace, label_selector=selector
        )
        return [i.metadata.name for i in listing.items if not i.metadata.deletion_timestamp]

    found = {kind: await asyncio.to_thread(names, kind) for kind in KINDS}
    namespaces = await asyncio.to_thread(core.list_namespace, label_selector=selector)
    found["namespaces"] = [n.metadata.name for n in namespaces.items if n.status.phase != "Terminating"]
    return {k: v for k, v in found.items() if v}


async def pod_of(core: client.CoreV1Api, namespace: str, kernel_id: str):
    pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kernel_id}")
    return pods.items[0] if pods.items else None


async def run(gw, kernel_id: str, code: str, timeout: float = 60) -> str:
    """The stdout of ``code`` run in the kernel through the gateway's websocket (it must succeed)."""
    ks = await KernelSocket.connect(gw, kernel_id)
    try:
        out = await ks.execute(code, timeout=timeout)
        assert out["reply"]["status"] == "ok", out
        return out["stdout"]
    finally:
        await ks.close()


def python_job(partitions: int, host: str, port: int) -> str:
    return (f"import socket, time\nsc.parallelize(range({partitions}), {partitions}).map(lambda x: "
            f"(socket.create_connection(({host!r}, {port})).close(), time.sleep(600))).collect()")


def scala_job(partitions: int, host: str, port: int) -> str:
    # a JVM task is not thread-interrupted when its job is cancelled (Spark's default): it stops
    # at its next check, as a task over records does at its next record
    return (f"sc.parallelize(0 until {partitions}, {partitions}).map {{ x => new java.net.Socket({json.dumps(host)}, {port}).close(); "
            f"while (!org.apache.spark.TaskContext.get.isInterrupted) Thread.sleep(100); x }}.collect()")


async def interrupt_a_running_job(gw, ks, kernel_id: str, partitions: int, host: str, job=python_job) -> dict:
    """Start a Spark job (``job``'s code: Python's or Scala's) in the kernel of ``ks`` whose tasks,
    once they run on the executors, call this process on ``host`` (EG_K8S_HOST_IP: pods reach it
    on either network) and then sleep; interrupt the kernel through ``gw`` once every task called.
    Returns the cell's execute_reply content."""
    called = 0
    arrived = asyncio.Event()

    def connected(reader, writer) -> None:
        nonlocal called
        called += 1
        writer.close()
        if called == partitions:
            arrived.set()

    server = await asyncio.start_server(connected, host, 0)
    port = server.sockets[0].getsockname()[1]
    msg_id = await ks.request("execute_request", {"code": job(partitions, host, port), "silent": False, "store_history": True,
                                                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    async with server:
        await asyncio.wait_for(arrived.wait(), 300)
    async with gw.client() as http:
        assert (await http.post(f"/api/kernels/{kernel_id}/interrupt")).status_code == 204
    while (msg := await ks.recv(timeout=120))["parent_header"].get("msg_id") != msg_id or msg["header"]["msg_type"] != "execute_reply":
        pass
    return msg["content"]
