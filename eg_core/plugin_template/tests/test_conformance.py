"""eg-hostproc passes eg's resource-manager conformance suite against its real backend."""

import pytest

from eg_core.testing import ResourceManagerConformance, processes_of_kernel


class TestHostProcConformance(ResourceManagerConformance):
    kernelspec = "python_hostproc"  # shipped in eg_hostproc/kernelspecs
    bad_config = {"kill_wait": "soon"}  # a kernelspec value the settings must refuse with a 400
    # The backend cannot tell this gateway's kernels from another's, so there is no orphan sweep.
    test_eg_orphans_found_after_restart = None

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory):
        """Start a gateway configured for the backend (here: nothing to configure)."""
        return gateway_factory

    @pytest.fixture
    def eg_probe(self):
        """What the backend still holds for a kernel id: here, processes with its KERNEL_ID."""
        return processes_of_kernel
