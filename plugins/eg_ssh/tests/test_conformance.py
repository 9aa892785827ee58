"""eg-ssh passes the resource-manager conformance suite against the test sshd, and its orphan
sweep at startup leaves the kernels of a live gateway (or of another gateway id) alone."""

import signal
import uuid

import pytest

from eg_core.testing import ResourceManagerConformance, processes_of_kernel, wait_until_gone

pytestmark = pytest.mark.timeout(300)
REMOVE = "--SSHResourceManager.orphans_at_startup=remove"


def _store(tmp_path, name: str) -> str:
    return f"--FileSessionStore.persistence_root={tmp_path / name}"


class TestSSHConformance(ResourceManagerConformance):
    kernelspec = "python_ssh"
    bad_config = {"ssh_port": "twenty-two"}
    orphan_args = (REMOVE,)

    @pytest.fixture
    def eg_gateway_factory(self, ssh_gateway):
        """Every gateway of one test shares a gateway id of its own."""
        gid = f"eg-conformance-{uuid.uuid4().hex[:8]}"
        return lambda *args, **kwargs: ssh_gateway(*args, gateway_id=gid, **kwargs)

    @pytest.fixture
    def eg_probe(self):
        return processes_of_kernel  # the test sshd runs on this machine


async def _kernel(gw) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def _kill(gw) -> None:
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()


async def test_a_restarting_gateway_leaves_a_live_gateways_kernels_alone(ssh_gateway, tmp_path):
    """Three gateways share the SSH host: ``live`` (same id, still running), ``crashed`` (same
    id, killed) and ``other`` (another id, killed). The crashed one restarts without its store
    and with ``orphans_at_startup=remove``: only its own kernel is removed on the host."""
    from eg_ssh.testing import run_code

    gid = f"eg-test-{uuid.uuid4().hex[:8]}"
    live = ssh_gateway(_store(tmp_path, "live"), gateway_id=gid)
    live_kernel = await _kernel(live)
    crashed = ssh_gateway(_store(tmp_path, "crashed"), gateway_id=gid)
    orphan = await _kernel(crashed)
    other = ssh_gateway(_store(tmp_path, "other"), gateway_id=gid + "-other")
    others_kernel = await _kernel(other)
    _kill(crashed)
    _kill(other)

    restarted = ssh_gateway(REMOVE, _store(tmp_path, "empty"), gateway_id=gid)
    assert await wait_until_gone(processes_of_kernel, orphan) == []
    await restarted.wait_for_output(orphan)
    assert "ssh: removed process group pid" in restarted.output()
    assert live_kernel not in restarted.output() and others_kernel not in restarted.output()
    assert (await run_code(live, live_kernel, "print('here')"))["stdout"] == "here\n"
    assert await processes_of_kernel(others_kernel)

    # The other id's own sweep finds its kernel; then the live gateway stops its own.
    ssh_gateway(REMOVE, _store(tmp_path, "empty-other"), gateway_id=gid + "-other")
    assert await wait_until_gone(processes_of_kernel, others_kernel) == []
    async with live.client() as http:
        assert (await http.delete(f"/api/kernels/{live_kernel}")).status_code == 204
    assert await wait_until_gone(processes_of_kernel, live_kernel) == []


class TestSSHConformanceIRkernel(TestSSHConformance):
    """The same checks with an R kernel (IRkernel)."""

    kernelspec = "R_ssh"
    language = "r"

    @pytest.fixture(autouse=True)
    def _r_installed(self, irkernel):
        """R and IRkernel on this host (the full run's tier)."""
