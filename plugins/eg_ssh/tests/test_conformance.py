"""eg-ssh passes the resource-manager conformance suite, against the test sshd."""

import pytest

from eg_core.testing import ResourceManagerConformance, processes_of_kernel

pytestmark = pytest.mark.timeout(300)


class TestSSHConformance(ResourceManagerConformance):
    kernelspec = "python_ssh"
    bad_config = {"ssh_port": "twenty-two"}
    # A gateway that lost its session store knows no host or pid to look for: the launchers of
    # its kernels are found by their comm ports only through the store (adoption).
    test_eg_orphans_found_after_restart = None

    @pytest.fixture
    def eg_gateway_factory(self, ssh_gateway):
        return ssh_gateway

    @pytest.fixture
    def eg_probe(self):
        return processes_of_kernel  # the test sshd runs on this machine
