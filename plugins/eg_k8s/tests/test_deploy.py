"""deploy/kubernetes applied to the test cluster with ``kubectl apply -k``: the gateway runs as a
pod (in-cluster config, its namespace-scoped Role) and starts a kernel pod.

The overlay written here changes only what this loopback-only machine needs, and what lets
another engineer's run share the cluster (a namespace of its own, free ports): the gateway pod on
the node's network, from this checkout's image, listening and called back on 127.0.0.1, reaching the API server on
127.0.0.1 (there is no service network here), kernels dialled on 127.0.0.1, its readiness probe
on 127.0.0.1. It also gives the gateway a local kernelspec, as an operator might by mistake: the
gateway in its pod refuses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from eg_core.testing import KernelSocket, free_port

from k8s_helpers import SA_TOKEN, cluster_access_code, left_behind

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "kubernetes"
# The image of this checkout: another checkout's run on the same engine builds its own.
IMAGE_TAG = "src-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12]


class DeployedGateway:
    def __init__(self, port: int, token: str, namespace: str, image: str):
        self.namespace, self.image = namespace, image
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.token = token
        self.headers = {"Authorization": f"token {token}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=120)


def kubectl(cluster, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kubectl", f"--kubeconfig={cluster['KUBECONFIG']}", *args], capture_output=True, text=True,
                          input=input, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
- {base}
images:
- name: eg/gateway
  newTag: {tag}
configMapGenerator:
- name: eg-config
  behavior: replace
  files:
  - eg_config.py
- name: eg-test-local-kernelspec
  options: {{disableNameSuffixHash: true}}  # the patch below names it
  files:
  - kernel.json
patches:
- target: {{kind: Namespace, name: eg}}
  patch: |-
    - op: replace
      path: /metadata/name
      value: {namespace}
- target: {{kind: Deployment, name: eg-gateway}}
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/ports
      value: [{{name: http, containerPort: {port}}}, {{name: response, containerPort: {response_port}}}]
    - op: add
      path: /spec/template/spec/hostNetwork
      value: true
    - op: add
      path: /spec/template/spec/enableServiceLinks
      value: false
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: KUBERNETES_SERVICE_PORT, value: "{apiserver_port}"}}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: EG_RESPONSE_ADDRESS, value: "127.0.0.1:{response_port}"}}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: EG_RESPONSE_BIND_IP, value: "127.0.0.1"}}
    - op: replace
      path: /spec/template/spec/containers/0/env/1
      value: {{name: EG_IP, value: "127.0.0.1"}}
    - op: replace
      path: /spec/template/spec/containers/0/env/2
      value: {{name: EG_PORT, value: "{port}"}}
    - op: replace
      path: /spec/template/spec/containers/0/readinessProbe
      value: {{httpGet: {{path: /api/ready, port: {port}, host: 127.0.0.1}}, timeoutSeconds: 5}}
    - op: add
      path: /spec/template/spec/volumes/-
      value: {{name: local-kernelspec, configMap: {{name: eg-test-local-kernelspec, items: [{{key: kernel.json, path: local_python/kernel.json}}]}}}}
    - op: add
      path: /spec/template/spec/containers/0/volumeMounts/-
      value: {{name: local-kernelspec, mountPath: /etc/eg-kernels, readOnly: true}}
"""


@pytest.fixture(scope="module")
def deployed(cluster, core, tmp_path_factory):
    env = {**os.environ, "DOCKER_HOST": cluster["DOCKER_HOST"], "PIP_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
    image = f"eg/gateway:{IMAGE_TAG}"
    build = subprocess.run(["bash", str(DEPLOY / "build-image.sh"), image, cluster["EG_K8S_IMAGE"]],
                           capture_output=True, text=True, env=env, timeout=900)
    assert build.returncode == 0, f"building the gateway image failed:\n{build.stderr[-3000:]}"
    tmp = tmp_path_factory.mktemp("overlay")
    port, response_port = free_port(), free_port()
    ns = f"eg-deploy-{secrets.token_hex(4)}"
    (tmp / "eg_config.py").write_text((DEPLOY / "eg_config.py").read_text() + (
        "\n# This machine: kernels on the node's network, bound and dialled on loopback.\n"
        "c.KubernetesSettings.host_network = True\n"
        "c.KubernetesSettings.kernel_host = '127.0.0.1'\n"
        "c.KubernetesSettings.kernel_bind_ip = '127.0.0.1'\n"
        "# A local kernelspec, as an operator might add one: refused in the pod.\n"
        "c.Gateway.kernel_spec_dirs = ['/etc/eg-kernels']\n"
    ))
    (tmp / "kernel.json").write_text(json.dumps(
        {"display_name": "Python 3 (local)", "language": "python", "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}))
    apiserver_port = cluster["EG_K8S_APISERVER_PORT"]
    (tmp / "kustomization.yaml").write_text(OVERLAY.format(
        base=os.path.relpath(DEPLOY, tmp), port=port, response_port=response_port, apiserver_port=apiserver_port, namespace=ns, tag=IMAGE_TAG))
    token = secrets.token_hex(16)
    kubectl(cluster, "create", "namespace", ns)
    try:
        kubectl(cluster, "-n", ns, "create", "secret", "generic", "eg-auth", f"--from-literal=token={token}")
        kubectl(cluster, "apply", "-k", str(tmp))
        rollout = kubectl(cluster, "-n", ns, "rollout", "status", "deployment/eg-gateway", "--timeout=180s", check=False)
        if rollout.returncode != 0:
            logs = kubectl(cluster, "-n", ns, "logs", "deployment/eg-gateway", "--tail=60", check=False)
            describe = kubectl(cluster, "-n", ns, "describe", "pods", check=False)
            raise AssertionError(f"the gateway Deployment did not become ready:\n{rollout.stderr}\n{logs.stdout}{logs.stderr}\n{describe.stdout[-3000:]}")
        yield DeployedGateway(port, token, ns, image)
    finally:
        kubectl(cluster, "delete", "-k", str(tmp), "--wait=true", "--timeout=120s", check=False)


async def test_kernel_through_the_gateway_pod(deployed, cluster, core):
    async with deployed.client() as http:
        r = await http.get("/api/kernelspecs")
        assert r.status_code == 200, r.text
        assert r.json()["default"] == "python_kubernetes"
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, f"{r.text}\n{kubectl(cluster, '-n', deployed.namespace, 'logs', 'deployment/eg-gateway', '--tail=40', check=False).stdout}"
        kid = r.json()["id"]
        pods = await asyncio.to_thread(core.list_namespaced_pod, deployed.namespace, label_selector=f"kernel_id={kid}")
        assert len(pods.items) == 1 and pods.items[0].status.phase == "Running"
        assert pods.items[0].spec.automount_service_account_token is False
        ks = await KernelSocket.connect(deployed, kid)
        try:
            assert (await ks.execute("print('hello from a pod kernel')"))["stdout"] == "hello from a pod kernel\n"
            out = await ks.execute(cluster_access_code(cluster, deployed.namespace))  # the gateway's namespace, with eg-auth
            assert json.loads(out["stdout"]) in ({"token": False, "secrets": 401}, {"token": False, "secrets": 403}), out
        finally:
            await ks.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, deployed.namespace, kid) == {}
    # The gateway runs with the Role of rbac.yaml only: it could not even list namespaces.
    sa = kubectl(cluster, "auth", "can-i", "list", "namespaces", f"--as=system:serviceaccount:{deployed.namespace}:eg-gateway", check=False)
    assert sa.stdout.strip() == "no"


async def test_the_gateway_pod_offers_and_runs_no_local_kernel(deployed, cluster):
    """The stock deployment has no local kernelspec (not even jupyter_client's python3); the one
    the overlay adds is refused."""
    async with deployed.client() as http:
        r = await http.get("/api/kernelspecs")
        specs = r.json()["kernelspecs"]
        assert sorted(specs) == ["python_kubernetes", "r_kubernetes"], specs
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert (r.status_code, r.json()["message"]) == (404, "Kernel spec 'python3' not found"), r.text
        r = await http.post("/api/kernels", json={"name": "local_python"})
        assert r.status_code == 403, r.text
        assert r.json()["reason"] == "Resource Manager Refused"
        assert f"its token {SA_TOKEN} exists" in r.json()["message"] and "LocalResourceManager.allow_in_pod=True" in r.json()["message"]
        assert (await http.get("/api/kernels")).json() == []
        async with httpx.AsyncClient(base_url=deployed.url) as probe:  # the readiness probe: no token
            r = await probe.get("/api/ready")
            assert (r.status_code, r.json()) == (200, {"ready": True})
    logs = kubectl(cluster, "-n", deployed.namespace, "logs", "deployment/eg-gateway", check=False).stdout
    assert logs.count("The 'local' resource manager runs no kernels: it is refused in a Kubernetes pod") == 1, logs[-3000:]
    assert "allow_in_pod" in logs and deployed.token not in logs

