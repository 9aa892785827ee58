"""Fixtures for eg-k8s's tests: a real Kubernetes control plane and node (started by
ci/setup.sh: kube-apiserver, scheduler, controller-manager and a kubelet built from Debian's
source package), gateways configured for it, and an API client to look at what they created.

Nothing here skips: without a cluster the tests fail with setup.sh's reason. Set
``EG_K8S_KEEP=1`` to keep the cluster (and the second one, :func:`cluster2`) after the session (it is kept anyway when it was already
running before the session, outside CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from eg_core.testing import GatewayProcess

HERE = Path(__file__).parent
SETUP = HERE.parent / "ci" / "setup.sh"
sys.path.append(str(HERE.parents[2] / "tests"))
sys.path.insert(0, str(HERE))
from k8s_helpers import api_client_of, gateway_args, scratch_namespace  # noqa: E402

def _running_cluster(env: dict[str, str], run: str):
    """Start (or reuse) a cluster with ci/setup.sh in ``env``; yields its printed values, and tears
    it down at the end unless it ran before the session (outside CI) or ``EG_K8S_KEEP`` is set."""
    already_running = Path(run, "kube-apiserver.pid").exists()
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0:
        pytest.fail(f"ci/setup.sh could not provide a Kubernetes cluster (rc {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    yield dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if (os.environ.get("CI") or not already_running) and not os.environ.get("EG_K8S_KEEP"):
        subprocess.run(["bash", str(SETUP), "--teardown"], capture_output=True, timeout=300, env=env)


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """``{"KUBECONFIG", "DOCKER_HOST", "EG_K8S_IMAGE", "EG_K8S_SPARK_IMAGE", "EG_K8S_NODE", ...}`` of a running cluster."""
    yield from _running_cluster(dict(os.environ), os.environ.get("EG_K8S_RUN", "/tmp/eg-k8s"))


@pytest.fixture(scope="session")
def cluster2() -> dict[str, str]:
    """The second cluster, beside the first (``EG_K8S_INSTANCE=2``: its own ports, node, engine and
    pod network, no kube-proxy; see ci/setup.sh), for the tests of several clusters: its values as
    :func:`cluster`'s (its kubeconfig's context is ``eg2``; no Spark image)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EG_K8S_")}
    yield from _running_cluster({**env, "EG_K8S_INSTANCE": "2"}, "/tmp/eg-k8s2")


@pytest.fixture(scope="session")
def api(cluster) -> client.ApiClient:
    return api_client_of(cluster["KUBECONFIG"])


@pytest.fixture(scope="session")
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def namespace(core) -> str:
    """A namespace of this test module's kernels (deleted afterwards)."""
    yield from scratch_namespace(core, "eg-test")


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
