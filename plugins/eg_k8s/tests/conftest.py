"""Fixtures for eg-k8s's tests: a real Kubernetes control plane and node (started by
ci/setup.sh: kube-apiserver, scheduler, controller-manager and a kubelet built from Debian's
source package), gateways configured for it, and an API client to look at what they created.

Nothing here skips: without a cluster the tests fail with setup.sh's reason. Set
``EG_K8S_KEEP=1`` to keep the cluster after the session (it is kept anyway when it was already
running before the session, outside CI).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

from eg_core.testing import GatewayProcess, KernelSocket  # noqa: F401  (re-exported for tests)

HERE = Path(__file__).parent
SETUP = HERE.parent / "ci" / "setup.sh"
sys.path.append(str(HERE.parents[2] / "tests"))

KINDS = ("pods", "secrets", "services", "configmaps")


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """``{"KUBECONFIG", "DOCKER_HOST", "EG_K8S_IMAGE", "EG_K8S_NODE"}`` of a running cluster."""
    run = os.environ.get("EG_K8S_RUN", "/tmp/eg-k8s")
    already_running = Path(run, "kube-apiserver.pid").exists()
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"ci/setup.sh could not provide a Kubernetes cluster (rc {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    yield values
    if (os.environ.get("CI") or not already_running) and not os.environ.get("EG_K8S_KEEP"):
        subprocess.run(["bash", str(SETUP), "--teardown"], capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def api(cluster) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=cluster["KUBECONFIG"], client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def namespace(core) -> str:
    """A namespace of this test module's kernels (deleted afterwards)."""
    name = f"eg-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def kernel_spec_dirs() -> list[str]:
    return [str(HERE / "kernelspecs")]


@pytest.fixture(scope="module")
def gateway_id() -> str:
    return f"eg-test-{uuid.uuid4().hex[:8]}"


def gateway_args(cluster, namespace: str, gateway_id: str, *extra: str) -> list[str]:
    """A gateway on the test cluster: kernels in ``namespace`` on the node's network, dialled and
    bound on loopback (the node's own address is never a target here)."""
    return [
        f"--KubernetesSettings.kubeconfig={cluster['KUBECONFIG']}",
        f"--KubernetesSettings.namespace={namespace}",
        f"--KubernetesSettings.gateway_id={gateway_id}",
        "--KubernetesSettings.host_network=True",
        "--KubernetesSettings.kernel_host=127.0.0.1",
        "--KubernetesSettings.kernel_bind_ip=127.0.0.1",
        "--KubernetesSettings.image_pull_policy=IfNotPresent",
        "--Gateway.launch_timeout=90",
        *extra,
    ]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs, cluster, namespace, gateway_id):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), *gateway_args(cluster, namespace, gateway_id), kernel_spec_dirs=kernel_spec_dirs)
    yield gw
    gw.stop()


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
