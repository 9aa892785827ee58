"""eg-k8s passes the resource-manager conformance suite, against the test cluster."""

import asyncio
import uuid

import pytest

from eg_core.testing import ResourceManagerConformance

from k8s_helpers import gateway_args, spark_args

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


class TestKubernetesConformanceIRkernel(TestKubernetesConformance):
    """The same checks with an R kernel (IRkernel) in eg's R kernel image, started by eg's launcher."""

    kernelspec = "R_kubernetes"
    language = "r"


class TestPerKernelNamespaceConformance(TestKubernetesConformance):
    """The checks about what a launch leaves, with a namespace created per kernel (the
    namespace, its RoleBinding, the Secret and the pod are all the launch's)."""

    kernelspec = "k8s_per_kernel"
    test_eg_interrupt = None
    test_eg_restart_keeps_the_id = None
    test_eg_failed_start_names_the_phase_and_leaves_nothing = None
    test_eg_launch_timeout_leaves_nothing = None
    test_eg_bad_settings_are_refused_before_anything_is_created = None
    test_eg_adoption_after_gateway_sigkill = None
    test_eg_orphans_found_after_restart = None

    @pytest.fixture
    def eg_probe(self, core):
        async def objects_of_kernel(kernel_id):
            selector = f"kernel_id={kernel_id}"
            pods = await asyncio.to_thread(core.list_pod_for_all_namespaces, label_selector=selector)
            secrets = await asyncio.to_thread(core.list_secret_for_all_namespaces, label_selector=selector)
            namespaces = await asyncio.to_thread(core.list_namespace, label_selector=selector)
            return ([f"pod {p.metadata.namespace}/{p.metadata.name} {p.status.phase}" for p in pods.items]
                    + [f"secret {s.metadata.namespace}/{s.metadata.name}" for s in secrets.items]
                    + [f"namespace {n.metadata.name}" for n in namespaces.items if n.status.phase != "Terminating"])

        return objects_of_kernel


class TestSparkKubernetesConformance(TestKubernetesConformance):
    """The same checks with ``spark_python_kubernetes``: the kernel pod is a Spark driver (its
    context lazy, so the checks that run no Spark start no executor; test_spark_kubernetes.py
    runs jobs on executors)."""

    kernelspec = "spark_python_kubernetes"

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory, cluster, namespace, kernel_spec_dirs):
        gateway_id = f"eg-conformance-{uuid.uuid4().hex[:8]}"
        module_dirs = list(kernel_spec_dirs)

        def start(*args, env=None, kernel_spec_dirs=()):
            return gateway_factory(*gateway_args(cluster, namespace, gateway_id), *spark_args(cluster), *args, env=env,
                                   kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs])

        return start
