"""eg-k8s passes the resource-manager conformance suite, against the test cluster."""

import asyncio
import uuid

import pytest

from eg_core.testing import ResourceManagerConformance

from k8s_helpers import gateway_args

pytestmark = pytest.mark.timeout(300)


class TestKubernetesConformance(ResourceManagerConformance):
    kernelspec = "python_kubernetes"
    bad_config = {"image_pull_policy": "Sometimes"}
    # the cluster is a session store too: an orphan is a pod no store knows, so it is off here
    orphan_args = ("--KubernetesSettings.orphans_at_startup=remove", "--KubernetesSettings.store_sessions=False")
    launch_timeout = 30.0

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory, cluster, namespace, kernel_spec_dirs):
        gateway_id = f"eg-conformance-{uuid.uuid4().hex[:8]}"  # orphan sweeps see this test's kernels only
        module_dirs = list(kernel_spec_dirs)

        def start(*args, env=None, kernel_spec_dirs=()):
            return gateway_factory(*gateway_args(cluster, namespace, gateway_id), *args, env=env,
                                   kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs])

        return start

    @pytest.fixture
    def eg_probe(self, core, namespace):
        async def pods_of_kernel(kernel_id):
            pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kernel_id}")
            secrets = await asyncio.to_thread(core.list_namespaced_secret, namespace, label_selector=f"kernel_id={kernel_id}")
            return [f"pod {p.metadata.name} {p.status.phase}" for p in pods.items] + [f"secret {s.metadata.name}" for s in secrets.items]

        return pods_of_kernel
