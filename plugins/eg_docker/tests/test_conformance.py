"""eg-docker passes the resource-manager conformance suite, against the test engine."""

import uuid

import pytest

from eg_core.testing import ResourceManagerConformance
from eg_docker._client import DockerClient

pytestmark = pytest.mark.timeout(300)


class TestDockerConformance(ResourceManagerConformance):
    kernelspec = "python_docker"
    bad_config = {"memory": "lots"}
    orphan_args = ("--DockerSettings.orphans_at_startup=remove",)

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory, docker_host, kernel_spec_dirs):
        gateway_id = f"eg-conformance-{uuid.uuid4().hex[:8]}"  # orphan sweeps see this test's kernels only

        def start(*args, env=None, kernel_spec_dirs=()):
            return gateway_factory(
                f"--DockerSettings.gateway_id={gateway_id}", *args,
                env={"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0", **(env or {})},
                kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs],
            )

        module_dirs = list(kernel_spec_dirs)
        return start

    @pytest.fixture
    def eg_probe(self, docker_host):
        async def containers_of_kernel(kernel_id):
            docker = DockerClient(docker_host)
            try:
                found = await docker.containers({"kernel_id": kernel_id})
            finally:
                await docker.aclose()
            return [f"container {c['Id'][:12]} {c.get('State')}" for c in found]

        return containers_of_kernel


class TestDockerConformanceIRkernel(TestDockerConformance):
    """The same checks with an R kernel (IRkernel) in eg's R kernel image."""

    kernelspec = "R_docker"
    language = "r"
