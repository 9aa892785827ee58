"""The stock deploy/kubernetes on the test cluster, as an operator applies it: ``kubectl apply -k``
of an overlay that only names this checkout's gateway image (kustomize ``images:``) and a
namespace of the test's own (the cluster is shared). Two gateway replicas on the pod network,
in-cluster config through the ``kubernetes`` Service, ready on ``/api/ready``, behind their
Service; the test reaches them through the Service's ClusterIP from the host (kube-proxy), and
each pod on its pod IP, with the token of the ``eg-auth`` Secret.

One deployment per module, shared by the checks, in the order they run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from eg_core.testing import KernelSocket

from k8s_helpers import cluster_access_code, left_behind, pod_of, run

sys.path.append(str(Path(__file__).parents[3] / "tests"))
from e2e_servers import JupyterProcess  # noqa: E402

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "kubernetes"
# The image of this checkout: another checkout's run on the same engine builds its own.
IMAGE_TAG = "src-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
GATEWAY_PODS = "app.kubernetes.io/name=eg,app.kubernetes.io/component=gateway"

OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
- {base}
images:
- name: eg/gateway
  newTag: {tag}
"""


class Endpoint:
    """The gateway at one address (the Service's ClusterIP, or one pod's IP)."""

    def __init__(self, host: str, port: int, token: str):
        self.url, self.ws_url = f"http://{host}:{port}", f"ws://{host}:{port}"
        self.token = token
        self.headers = {"Authorization": f"token {token}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=120)


class Deployment:
    def __init__(self, cluster, core, namespace: str, token: str):
        self.cluster, self.core, self.namespace, self.token = cluster, core, namespace, token
        service = core.read_namespaced_service("eg-gateway", namespace)
        self.service = Endpoint(service.spec.cluster_ip, service.spec.ports[0].port, token)

    def pods(self) -> dict[str, Endpoint]:
        """Ready gateway pods by name, each at its pod IP."""
        listing = self.core.list_namespaced_pod(self.namespace, label_selector=GATEWAY_PODS)
        return {p.metadata.name: Endpoint(p.status.pod_ip, 8888, self.token) for p in listing.items
                if not p.metadata.deletion_timestamp and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])}

    def logs(self, pod: str) -> str:
        return kubectl(self.cluster, "-n", self.namespace, "logs", pod, check=False).stdout

    def rollout(self) -> None:
        """Wait (on the API's watch, through kubectl) until the Deployment's replicas are all new and ready."""
        status = kubectl(self.cluster, "-n", self.namespace, "rollout", "status", "deployment/eg-gateway", "--timeout=180s", check=False)
        if status.returncode != 0:
            logs = kubectl(self.cluster, "-n", self.namespace, "logs", "deployment/eg-gateway", "--tail=60", check=False)
            describe = kubectl(self.cluster, "-n", self.namespace, "describe", "pods", check=False)
            raise AssertionError(f"the gateway Deployment did not become ready:\n{status.stderr}\n{logs.stdout}{logs.stderr}\n{describe.stdout[-3000:]}")


def kubectl(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kubectl", f"--kubeconfig={cluster['KUBECONFIG']}", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


async def reconnect_and_run(deployed: Deployment, ks: KernelSocket, kid: str, first: dict, code: str) -> str:
    """``ks`` was cut off (its replica went): reconnect through the Service with the same session
    id, run ``code`` as the session's next execution (after ``first``), return its stdout."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ks.recv(timeout=120)
    ks = await KernelSocket.connect(deployed.service, kid, session_id=ks.session)
    try:
        again = await ks.execute(code)
        assert again["reply"]["execution_count"] == first["reply"]["execution_count"] + 1, again
        return again["stdout"]
    finally:
        await ks.close()


@pytest.fixture(scope="module")
def deployed(cluster, core, tmp_path_factory):
    env = {**os.environ, "DOCKER_HOST": cluster["DOCKER_HOST"], "PIP_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
    build = subprocess.run(["bash", str(DEPLOY / "build-image.sh"), f"eg/gateway:{IMAGE_TAG}", cluster["EG_K8S_IMAGE"]],
                           capture_output=True, text=True, env=env, timeout=900)
    assert build.returncode == 0, f"building the gateway image failed:\n{build.stderr[-3000:]}"
    tmp = tmp_path_factory.mktemp("overlay")
    ns = f"eg-deploy-{secrets.token_hex(4)}"
    (tmp / "kustomization.yaml").write_text(OVERLAY.format(base=os.path.relpath(DEPLOY, tmp), namespace=ns, tag=IMAGE_TAG))
    token = secrets.token_hex(16)
    kubectl(cluster, "create", "namespace", ns)
    try:
        kubectl(cluster, "-n", ns, "create", "secret", "generic", "eg-auth", f"--from-literal=token={token}")
        kubectl(cluster, "apply", "-k", str(tmp))
        deployment = Deployment(cluster, core, ns, token)
        deployment.rollout()
        yield deployment
    finally:
        kubectl(cluster, "delete", "-k", str(tmp), "--wait=true", "--timeout=180s", check=False)


async def test_two_replicas_ready_with_no_local_kernel(deployed, cluster):
    """Both replicas are ready (the API server reached through in-cluster config), offer the
    kernelspecs of the stock config and no local one, and refuse the local resource manager."""
    pods = await asyncio.to_thread(deployed.pods)
    assert len(pods) == 2, pods
    for endpoint in [deployed.service, *pods.values()]:
        async with httpx.AsyncClient(base_url=endpoint.url) as probe:  # the readiness probe: no token
            r = await probe.get("/api/ready")
            assert (r.status_code, r.json()) == (200, {"ready": True})
        async with endpoint.client() as http:
            r = await http.get("/api/kernelspecs")
            assert r.status_code == 200, r.text
            assert r.json()["default"] == "python_kubernetes"
            assert sorted(r.json()["kernelspecs"]) == ["python_kubernetes", "r_kubernetes"], r.json()
            r = await http.post("/api/kernels", json={"name": "python3"})
            assert (r.status_code, r.json()["message"]) == (404, "Kernel spec 'python3' not found"), r.text
    for pod in pods:
        logs = await asyncio.to_thread(deployed.logs, pod)
        assert logs.count("The 'local' resource manager runs no kernels: it is refused in a Kubernetes pod") == 1, logs[-3000:]
        assert "allow_in_pod" in logs and deployed.token not in logs
    # The gateway runs with the Role of rbac.yaml only: it could not even list namespaces.
    sa = kubectl(cluster, "auth", "can-i", "list", "namespaces", f"--as=system:serviceaccount:{deployed.namespace}:eg-gateway", check=False)
    assert sa.stdout.strip() == "no"


async def test_a_kernel_outlives_the_replica_that_launched_it(deployed, cluster, core):
    """A kernel started through the Service is used through each replica, keeps its state when
    the pod that launched it is deleted, and a websocket client cut off by that deletion
    reconnects through the Service and continues its session."""
    ns = deployed.namespace
    async with deployed.service.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    pods = await asyncio.to_thread(deployed.pods)
    launcher = [name for name in pods if f"[kernel {kid}] launched" in await asyncio.to_thread(deployed.logs, name)]
    assert len(launcher) == 1, (launcher, pods)
    launcher, = launcher
    kernel_pods = await asyncio.to_thread(core.list_namespaced_pod, ns, label_selector=f"kernel_id={kid}")
    assert len(kernel_pods.items) == 1 and kernel_pods.items[0].spec.automount_service_account_token is False
    assert not kernel_pods.items[0].spec.host_network  # on the pod network

    assert await run(deployed.service, kid, "x = 6 * 7; print(x)") == "42\n"
    for name, endpoint in pods.items():  # each replica serves it, whichever launched it
        assert await run(endpoint, kid, f"print(x, {name!r})") == f"42 {name}\n"
    out = await run(deployed.service, kid, cluster_access_code(cluster, ns))  # the gateway's namespace, with eg-auth
    assert json.loads(out) in ({"token": False, "secrets": 401}, {"token": False, "secrets": 403}), out

    # A client on the launching replica, in the middle of its session.
    ks = await KernelSocket.connect(pods[launcher], kid)
    first = await ks.execute("y = x + 1")
    assert first["reply"]["status"] == "ok"
    await asyncio.to_thread(kubectl, cluster, "-n", ns, "delete", "pod", launcher, "--wait=true", "--timeout=120s")
    assert await reconnect_and_run(deployed, ks, kid, first, "print(x, y)") == "42 43\n"
    assert await run(deployed.service, kid, "print(x == 42)") == "True\n"
    async with deployed.service.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, ns, kid) == {}


async def test_jupyter_server_runs_a_cell_through_the_service(deployed, core, tmp_path):
    js = JupyterProcess(tmp_path, deployed.service)  # --gateway-url=http://<ClusterIP>:8888
    try:
        async with js.client() as http:
            body = {"path": "analysis.ipynb", "type": "notebook", "name": "analysis.ipynb", "kernel": {"name": "python_kubernetes"}}
            r = await http.post("/api/sessions", json=body)
            assert r.status_code == 201, f"{r.text}\n{js.output()[-3000:]}"
            session, kid = r.json()["id"], r.json()["kernel"]["id"]
            assert (await pod_of(core, deployed.namespace, kid)).status.phase == "Running"
            ks = await KernelSocket.connect(js, kid)
            try:
                assert (await ks.execute("x = 6 * 7; print(x)"))["stdout"] == "42\n"
            finally:
                await ks.close()
            assert (await http.delete(f"/api/sessions/{session}")).status_code == 204
    finally:
        js.stop()
    assert await left_behind(core, deployed.namespace, kid) == {}


async def test_a_rolling_update_of_the_gateway_loses_no_kernel(deployed, cluster, core):
    """``kubectl rollout restart``: every gateway pod is replaced; the kernel keeps its pod and its
    state, and a client cut off reconnects through the Service and continues its session."""
    ns = deployed.namespace
    before = set(await asyncio.to_thread(deployed.pods))
    async with deployed.service.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    kernel_pod = await pod_of(core, ns, kid)
    ks = await KernelSocket.connect(deployed.service, kid)
    first = await ks.execute("x = 42")
    assert first["reply"]["status"] == "ok"

    await asyncio.to_thread(kubectl, cluster, "-n", ns, "rollout", "restart", "deployment/eg-gateway")
    await asyncio.to_thread(deployed.rollout)
    after = await asyncio.to_thread(deployed.pods)
    assert len(after) == 2 and not set(after) & before, (before, after)
    assert await reconnect_and_run(deployed, ks, kid, first, "print(x == 42)") == "True\n"
    assert (await pod_of(core, ns, kid)).metadata.uid == kernel_pod.metadata.uid
    for endpoint in [deployed.service, *after.values()]:  # every replica lists it
        async with endpoint.client() as http:
            assert [k["id"] for k in (await http.get("/api/kernels")).json()] == [kid]
    async with deployed.service.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, ns, kid) == {}
