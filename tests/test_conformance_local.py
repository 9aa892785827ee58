"""The builtin ``local`` resource manager passes the resource-manager conformance suite."""

import pytest

from eg_core.testing import ResourceManagerConformance, processes_of_kernel

pytestmark = pytest.mark.timeout(300)


class TestLocalConformance(ResourceManagerConformance):
    kernelspec = "python3"
    bad_config = {"port_range": "not-a-range"}
    # Local kernels carry no gateway id: on a host several gateways share (as here), a sweep
    # could not tell another gateway's kernels from orphans, so local has none.
    test_eg_orphans_found_after_restart = None

    @pytest.fixture
    def eg_probe(self):
        return processes_of_kernel
