"""Fixtures for eg-k8s's tests: a real Kubernetes control plane and node (started by
ci/setup.sh: kube-apiserver, scheduler, controller-manager and a kubelet built from Debian's
source package), gateways configured for it, and an API client to look at what they created.

Nothing here skips: without a cluster the tests fail with setup.sh's reason. Set
``EG_K8S_KEEP=1`` to keep the cluster after the session (it is kept anyway when it was already
running before the session, outside CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

from eg_core.testing import GatewayProcess

HERE = Path(__file__).parent
SETUP = HERE.parent / "ci" / "setup.sh"
sys.path.append(str(HERE.parents[2] / "tests"))
sys.path.insert(0, str(HERE))
from k8s_helpers import gateway_args  # noqa: E402

@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """``{"KUBECONFIG", "DOCKER_HOST", "EG_K8S_IMAGE", "EG_K8S_SPARK_IMAGE", "EG_K8S_NODE", ...}`` of a running cluster."""
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


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs, cluster, namespace, gateway_id):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), *gateway_args(cluster, namespace, gateway_id), kernel_spec_dirs=kernel_spec_dirs)
    yield gw
    gw.stop()
