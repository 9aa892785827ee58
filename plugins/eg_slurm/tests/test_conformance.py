"""eg-slurm passes the resource-manager conformance suite, against the real one-node cluster."""

import uuid

import pytest

from eg_core.testing import ResourceManagerConformance

pytestmark = pytest.mark.timeout(300)


class TestSlurmConformance(ResourceManagerConformance):
    kernelspec = "python_slurm_test"  # python_slurm with the kernel bound to 127.0.0.1
    bad_config = {"partition": "debug; rm -rf /"}
    orphan_args = ("--SlurmSettings.orphans_at_startup=remove",)

    @pytest.fixture
    def eg_gateway_factory(self, eg_gateway_factory):
        gateway_id = f"conformance-{uuid.uuid4().hex[:8]}"  # the orphan sweep sees this test's jobs only

        def start(*args, **kwargs):
            return eg_gateway_factory(f"--SlurmSettings.gateway_id={gateway_id}", *args, **kwargs)

        return start

    @pytest.fixture
    def eg_probe(self, slurm_probe):
        return slurm_probe


class TestSlurmConformanceIRkernel(TestSlurmConformance):
    """The same checks with an R kernel (IRkernel)."""

    kernelspec = "R_slurm_test"  # R_slurm with the kernel bound to 127.0.0.1
    language = "r"

    @pytest.fixture(autouse=True)
    def _r_installed(self, irkernel):
        """R and IRkernel on this host (the full run's tier)."""
