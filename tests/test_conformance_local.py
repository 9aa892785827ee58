"""The builtin ``local`` resource manager passes the resource-manager conformance suite, and its
orphan sweep at startup leaves the kernels of a live gateway (or of another gateway id) alone."""

import signal
import uuid

import pytest

from eg_core import procinfo
from eg_core.testing import ResourceManagerConformance, processes_of_kernel, wait_until_gone

pytestmark = pytest.mark.timeout(300)
REMOVE = "--LocalResourceManager.orphans_at_startup=remove"


def _gateway_id(gid: str) -> str:
    return f"--LocalResourceManager.gateway_id={gid}"


def _store(tmp_path, name: str) -> str:
    return f"--FileSessionStore.persistence_root={tmp_path / name}"


class TestLocalConformance(ResourceManagerConformance):
    kernelspec = "python3"
    bad_config = {"port_range": "not-a-range"}
    orphan_args = (REMOVE,)

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory, kernel_spec_dirs):
        """Every gateway of one test shares a gateway id of its own: this machine runs other
        tests' gateways, whose kernels a sweep must not see."""
        gid = _gateway_id(f"eg-conformance-{uuid.uuid4().hex[:8]}")

        def start(*args, env=None, kernel_spec_dirs=()):
            return gateway_factory(gid, *args, env=env, kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs])

        module_dirs = list(kernel_spec_dirs)
        return start

    @pytest.fixture
    def eg_probe(self):
        return processes_of_kernel


async def _kernel(gw) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def _kill(gw) -> None:
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()


async def _answers(gw, kernel_id: str) -> bool:
    from eg_core.testing import KernelSocket

    ws = await KernelSocket.connect(gw, kernel_id)
    try:
        return (await ws.execute("print('here')"))["stdout"] == "here\n"
    finally:
        await ws.close()


async def test_a_restarting_gateway_leaves_a_live_gateways_kernels_alone(gateway_factory, tmp_path):
    """Three gateways on one host: ``live`` (same id, still running), ``crashed`` (same id,
    killed) and ``other`` (another id, killed). The crashed one restarts without its store and
    with ``orphans_at_startup=remove``: only its own kernel is removed."""
    gid = f"eg-test-{uuid.uuid4().hex[:8]}"
    live = gateway_factory(_gateway_id(gid), _store(tmp_path, "live"))
    live_kernel = await _kernel(live)
    crashed = gateway_factory(_gateway_id(gid), _store(tmp_path, "crashed"))
    orphan = await _kernel(crashed)
    other = gateway_factory(_gateway_id(gid + "-other"), _store(tmp_path, "other"))
    others_kernel = await _kernel(other)
    _kill(crashed)
    _kill(other)

    restarted = gateway_factory(_gateway_id(gid), REMOVE, _store(tmp_path, "empty"))
    assert await wait_until_gone(processes_of_kernel, orphan) == []
    await restarted.wait_for_output(orphan)
    assert "removed process group pid" in restarted.output()
    assert live_kernel not in restarted.output() and others_kernel not in restarted.output()
    assert await _answers(live, live_kernel)
    assert await processes_of_kernel(others_kernel)

    # The other id's own sweep finds its kernel (then this test leaves nothing behind).
    gateway_factory(_gateway_id(gid + "-other"), REMOVE, _store(tmp_path, "empty-other"))
    assert await wait_until_gone(processes_of_kernel, others_kernel) == []


async def test_the_default_gateway_id_finds_the_orphans_of_the_previous_run(gateway_factory, tmp_path):
    """No gateway_id configured: the restarted gateway still knows the killed one's kernel as
    its own (reported only: a removal with the default id could reach other tests' kernels)."""
    first = gateway_factory(_store(tmp_path, "first"))
    kid = await _kernel(first)
    _kill(first)
    second = gateway_factory(_store(tmp_path, "empty"))
    try:
        assert kid in await second.wait_for_output("found orphan process group")  # the sweep runs once it serves
    finally:
        for session in procinfo.kernel_sessions():
            if session["marks"].get("KERNEL_ID") == kid:
                procinfo.end_session(session["pid"], session["started"])
    assert await wait_until_gone(processes_of_kernel, kid) == []


async def test_a_kernel_the_shared_store_records_is_no_orphan(gateway_factory, tmp_path):
    """Replication mode: a gateway that starts while a killed one's kernel is still recorded in
    their shared store does not adopt it at startup, and its sweep (``remove``) leaves it too:
    the first request for it adopts it."""
    gid = _gateway_id(f"eg-test-{uuid.uuid4().hex[:8]}")
    shared = ("--Gateway.availability_mode=replication", _store(tmp_path, "shared"))
    first = gateway_factory(gid, *shared)
    kid = await _kernel(first)
    _kill(first)
    second = gateway_factory(gid, REMOVE, *shared)
    assert kid not in second.output()
    assert await _answers(second, kid)
    async with second.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await wait_until_gone(processes_of_kernel, kid) == []


class TestLocalConformanceIRkernel(TestLocalConformance):
    """The same checks with an R kernel (IRkernel)."""

    kernelspec = "ir"
    language = "r"

    @pytest.fixture(autouse=True)
    def _r_installed(self, irkernel):
        """R and IRkernel on this host (the full run's tier)."""
