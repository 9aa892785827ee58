"""The resource-manager conformance suite (re-exported by :mod:`eg_core.testing`).

A resource manager's test module subclasses :class:`ResourceManagerConformance`, names its
kernelspec, and provides two fixtures: ``eg_gateway_factory`` (starts a gateway configured for
its backend) and ``eg_probe`` (lists what the backend still holds for a kernel id)::

    from eg_core.testing import ResourceManagerConformance, processes_of_kernel

    class TestSlurmConformance(ResourceManagerConformance):
        kernelspec = "python_slurm"
        bad_config = {"partition": 42}          # refused with a 400 before anything is created

        @pytest.fixture
        def eg_probe(self):
            return jobs_of_kernel             # async (kernel_id) -> ["job 123 RUNNING", ...]

Every check starts its own kernel, through the REST and websocket API, against the real
backend; the checks that do not kill their gateway share one per class (``eg_gateway``), the
others start their own (``eg_start``). A subclass per kernel language runs the same checks with
another kernelspec: ``language = "r"`` picks the code they run (:data:`LANGUAGE_CODE`). A check the resource manager cannot support is switched off in the
subclass by setting it to ``None`` (e.g. ``test_eg_orphans_found_after_restart = None`` for a
backend that cannot list what it runs); the suite then does not collect it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from ..lifecycle import Phase

Probe = Callable[[str], Awaitable[list[str]]]
# ``{connection_file}`` as an ignored argument: a resource manager that relies on the core's
# connection file (local) gets one, as for a real kernel.
FAILING_ARGV = ["python", "-c", "import sys; sys.exit(3)", "{connection_file}"]
HANGING_ARGV = ["python", "-c", "import time; time.sleep(3600)", "{connection_file}"]


@dataclass(frozen=True)
class KernelCode:
    """The code the checks run in one kernel language, and what it prints."""

    answer: str  # prints "42\n"
    sleep: str  # prints "sleeping", then sleeps for two minutes
    interrupted: dict  # what the interrupted cell's execute_reply content holds
    set_var: str  # defines ``before_restart``
    has_var: str  # prints whether ``before_restart`` is defined
    no_var_output: str  # what ``has_var`` prints after a restart
    keep: str  # defines ``survivor`` as "kept"
    show_kept: str  # prints ``survivor``


# Per kernelspec language (``ResourceManagerConformance.language``).
LANGUAGE_CODE = {
    "python": KernelCode(
        answer="print(6 * 7)",
        sleep="print('sleeping', flush=True)\nimport time; time.sleep(120)",
        interrupted={"status": "error", "ename": "KeyboardInterrupt"},
        set_var="before_restart = 1",
        has_var="print('before_restart' in dir())",
        no_var_output="False\n",
        keep="survivor = 'kept'",
        show_kept="print(survivor)",
    ),
    "r": KernelCode(
        answer='cat(6 * 7, "\\n", sep = "")',
        sleep='cat("sleeping\\n")\nSys.sleep(120)',
        interrupted={"status": "abort"},  # IRkernel reports no exception
        set_var="before_restart <- 1",
        has_var='cat(exists("before_restart"), "\\n", sep = "")',
        no_var_output="FALSE\n",
        keep='survivor <- "kept"',
        show_kept='cat(survivor, "\\n", sep = "")',
    ),
}


async def wait_until_gone(probe: Probe, kernel_id: str, timeout: float = 60.0) -> list[str]:
    """What ``probe`` still finds for ``kernel_id`` after waiting up to ``timeout`` s for nothing."""
    deadline = time.monotonic() + timeout
    while (left := await probe(kernel_id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return left


async def _first_found(probe: Probe, kernel_ids: list[str], starts: list[asyncio.Future], timeout: float) -> None:
    """Wait until the probe finds something of one of ``kernel_ids`` (a launch reached the
    resource manager), or every start answered."""
    deadline = time.monotonic() + timeout
    while not all(s.done() for s in starts):
        if any(await asyncio.gather(*(probe(k) for k in kernel_ids))):
            return
        assert time.monotonic() < deadline, f"no launch reached the resource manager within {timeout}s"
        await asyncio.sleep(0.05)
    answers = [s.result() for s in starts]
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]


def _kernel_ids_in(log: str) -> set[str]:
    """The kernel ids of every lifecycle event in a gateway's log (the events plugin's lines)."""
    found = set()
    for line in log.splitlines():
        start = line.find('{"time"')
        if start >= 0:
            try:
                found.add(json.loads(line[start:])["kernel_id"])
            except (ValueError, KeyError, TypeError):
                continue
    return found


async def _settled(gw, probe: Probe, kernel_ids: list[str], timeout: float) -> list[str]:
    """Wait until each of ``kernel_ids`` is either listed by ``gw`` or gone from the backend
    (the probe finds nothing); return the listed ones. Fails naming what is left otherwise."""
    deadline = time.monotonic() + timeout
    async with gw.client() as http:
        while True:
            r = await http.get("/api/kernels")
            assert r.status_code == 200, r.text
            listed = {k["id"] for k in r.json()}
            left = {k: found for k in kernel_ids if k not in listed and (found := await probe(k))}
            if not left:
                return [k for k in kernel_ids if k in listed]
            assert time.monotonic() < deadline, f"left behind, unknown to the next gateway: {left}\n{gw.output()[-4000:]}"
            await asyncio.sleep(0.5)


class ResourceManagerConformance:
    """The checks every resource manager must pass (see the module docstring)."""

    kernelspec: str = ""
    bad_config: dict[str, Any] | None = None  # a kernelspec config the resource manager must refuse
    orphan_args: tuple[str, ...] = ()  # gateway arguments that make it remove orphans at startup
    launch_timeout: float = 10.0  # seconds, for the launch-timeout check
    crash_launches: int = 3  # concurrent launches under way when the gateway is SIGKILLed
    language: str = "python"  # the kernelspec's language: a key of LANGUAGE_CODE

    @property
    def code(self) -> KernelCode:
        """The code the checks run in ``language``."""
        return LANGUAGE_CODE[self.language]

    # -- setup --------------------------------------------------------------------------------

    @pytest.fixture
    def eg_variants(self, tmp_path, kernel_spec_dirs) -> Path:
        """Kernelspecs derived from ``kernelspec``: ``<name>-eg-fails`` (exits at once),
        ``<name>-eg-hangs`` (never answers) and ``<name>-eg-bad`` (``bad_config`` merged in)."""
        from ._plugins import kernelspec_dir

        source = next(
            (Path(d) / self.kernelspec for d in kernel_spec_dirs if (Path(d) / self.kernelspec / "kernel.json").exists()),
            None,
        ) or Path(kernelspec_dir(self.kernelspec))
        spec = json.loads((source / "kernel.json").read_text())
        root = tmp_path / "eg-variants"
        for suffix, argv, extra in (
            ("fails", FAILING_ARGV, {}),
            ("hangs", HANGING_ARGV, {}),
            ("bad", spec["argv"], self.bad_config or {}),
        ):
            variant = json.loads(json.dumps(spec))
            variant["argv"] = argv
            variant["display_name"] = f"{spec.get('display_name', self.kernelspec)} ({suffix})"
            metadata = variant.setdefault("metadata", {})
            holder = metadata.get("kernel_provisioner") or metadata.get("process_proxy")
            if holder is not None:
                holder["config"] = {**(holder.get("config") or {}), **extra}
            (root / f"{self.kernelspec}-eg-{suffix}").mkdir(parents=True)
            (root / f"{self.kernelspec}-eg-{suffix}" / "kernel.json").write_text(json.dumps(variant))
        return root

    @pytest.fixture
    def eg_start(self, eg_gateway_factory, eg_variants):
        """Start a gateway for the suite: the plugin's factory, with the variant kernelspecs."""

        def start(*args: str, **kwargs: Any):
            return eg_gateway_factory(*args, kernel_spec_dirs=[str(eg_variants)], **kwargs)

        return start

    @pytest.fixture
    def eg_gateway(self, eg_start, eg_shared_gateways):
        """A gateway for a check that does not kill it: the class's shared one, started by the
        first such check (again if it died)."""
        if not eg_shared_gateways or eg_shared_gateways[-1].proc.poll() is not None:
            gw = eg_start()
            gw.shared = True
            eg_shared_gateways.append(gw)
        return eg_shared_gateways[-1]

    async def _launch(self, gw, name: str | None = None, env: dict | None = None):
        async with gw.client() as http:
            return await http.post("/api/kernels", json={"name": name or self.kernelspec, "env": env or {}})

    async def _started(self, gw) -> str:
        r = await self._launch(gw)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def _run(self, gw, kernel_id: str, code: str) -> dict:
        from ._clients import KernelSocket

        ws = await KernelSocket.connect(gw, kernel_id)
        try:
            return await ws.execute(code)
        finally:
            await ws.close()

    async def _shutdown(self, gw, kernel_id: str) -> None:
        async with gw.client() as http:
            r = await http.delete(f"/api/kernels/{kernel_id}")
            assert r.status_code == 204, r.text

    def _refused_launch(self, r, status: tuple[int, ...]) -> dict:
        assert r.status_code in status, r.text
        body = r.json()
        assert set(body) >= {"reason", "message"} and body["message"], body
        return body

    # -- the checks ---------------------------------------------------------------------------

    async def test_eg_start_and_execute(self, eg_gateway, eg_probe):
        gw = eg_gateway
        kid = await self._started(gw)
        assert (await self._run(gw, kid, self.code.answer))["stdout"] == "42\n"
        assert await eg_probe(kid), "the probe finds nothing for a running kernel: it cannot prove cleanups"
        await self._shutdown(gw, kid)

    async def test_eg_interrupt(self, eg_gateway):
        from ._clients import KernelSocket

        gw = eg_gateway
        kid = await self._started(gw)
        ws = await KernelSocket.connect(gw, kid)
        try:
            # Interrupted once the cell says it sleeps: "busy" alone comes before the cell runs.
            msg_id = await ws.request("execute_request", {"code": self.code.sleep, "silent": False})
            while not (await ws.recv(60))["content"].get("text", "").startswith("sleeping"):
                pass
            async with gw.client() as http:
                assert (await http.post(f"/api/kernels/{kid}/interrupt", json={})).status_code == 204
            while (reply := await ws.recv(60))["header"]["msg_type"] != "execute_reply" or reply["parent_header"].get("msg_id") != msg_id:
                pass
            assert self.code.interrupted.items() <= reply["content"].items(), reply["content"]
        finally:
            await ws.close()
        await self._shutdown(gw, kid)

    async def test_eg_restart_keeps_the_id(self, eg_gateway):
        gw = eg_gateway
        kid = await self._started(gw)
        await self._run(gw, kid, self.code.set_var)
        async with gw.client() as http:
            r = await http.post(f"/api/kernels/{kid}/restart", json={})
            assert r.status_code == 200, r.text
            assert r.json()["id"] == kid
        out = await self._run(gw, kid, self.code.has_var)
        assert out["stdout"] == self.code.no_var_output, out
        await self._shutdown(gw, kid)

    async def test_eg_shutdown_leaves_nothing(self, eg_gateway, eg_probe):
        gw = eg_gateway
        kid = await self._started(gw)
        await self._shutdown(gw, kid)
        assert await wait_until_gone(eg_probe, kid) == []

    async def test_eg_failed_start_names_the_phase_and_leaves_nothing(self, eg_gateway, eg_probe):
        gw = eg_gateway
        kid = str(uuid.uuid4())
        r = await self._launch(gw, f"{self.kernelspec}-eg-fails", {"KERNEL_ID": kid})
        body = self._refused_launch(r, (502, 504))  # the kernel failed, not the gateway (500)
        assert any(body["message"].startswith(f"{phase}:") for phase in Phase.ALL), body
        assert await wait_until_gone(eg_probe, kid) == []

    async def test_eg_launch_timeout_leaves_nothing(self, eg_gateway, eg_probe):
        gw = eg_gateway
        kid = str(uuid.uuid4())
        env = {"KERNEL_ID": kid, "KERNEL_LAUNCH_TIMEOUT": str(self.launch_timeout)}
        body = self._refused_launch(await self._launch(gw, f"{self.kernelspec}-eg-hangs", env), (504,))
        assert "launch timeout" in body["message"], body
        assert await wait_until_gone(eg_probe, kid) == []

    async def test_eg_bad_settings_are_refused_before_anything_is_created(self, eg_gateway, eg_probe):
        assert self.bad_config, "name a kernelspec config the resource manager must refuse (bad_config)"
        gw = eg_gateway
        kid = str(uuid.uuid4())
        self._refused_launch(await self._launch(gw, f"{self.kernelspec}-eg-bad", {"KERNEL_ID": kid}), (400, 403))
        assert await eg_probe(kid) == []

    async def test_eg_adoption_after_gateway_sigkill(self, eg_start, eg_probe, tmp_path):
        store = tmp_path / "eg-store"
        args = ("--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={store}")
        first = eg_start(*args)
        kid = await self._started(first)
        await self._run(first, kid, self.code.keep)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        second = eg_start(*args)
        assert (await self._run(second, kid, self.code.show_kept))["stdout"] == "kept\n"
        await self._shutdown(second, kid)
        assert await wait_until_gone(eg_probe, kid) == []

    async def test_eg_gateway_sigkill_during_concurrent_launches(self, eg_start, eg_probe, tmp_path):
        """The gateway is SIGKILLed once the first of three concurrent launches has reached the
        resource manager; the next gateway on the same session store adopts or removes every
        kernel it left (either is right, whatever the timing): every kernel the probe still
        finds is listed by it and runs code, and nothing else is left."""
        args = (f"--FileSessionStore.persistence_root={tmp_path / 'eg-crash-store'}",)
        first = eg_start(*args)
        kernel_ids = [str(uuid.uuid4()) for _ in range(self.crash_launches)]
        async with first.client() as http:
            starts = [
                asyncio.ensure_future(http.post("/api/kernels", json={"name": self.kernelspec, "env": {"KERNEL_ID": kid}}))
                for kid in kernel_ids
            ]
            await _first_found(eg_probe, kernel_ids, starts, timeout=max(120.0, 4 * self.launch_timeout))
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            await asyncio.gather(*starts, return_exceptions=True)
        kernel_ids += [k for k in _kernel_ids_in(first.output()) if k not in kernel_ids]
        second = eg_start(*args)
        adopted = await _settled(second, eg_probe, kernel_ids, timeout=180.0)
        for kid in adopted:
            assert (await self._run(second, kid, self.code.answer))["stdout"] == "42\n", kid
            await self._shutdown(second, kid)
        for kid in kernel_ids:
            assert await wait_until_gone(eg_probe, kid) == [], kid

    async def test_eg_orphans_found_after_restart(self, eg_start, eg_probe, tmp_path):
        first = eg_start()
        kid = await self._started(first)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        assert await eg_probe(kid), "the kernel should outlive a killed gateway"
        # An orphan is a kernel no store knows: the next gateway gets an empty session store.
        unknown = f"--FileSessionStore.persistence_root={tmp_path / 'eg-empty-store'}"
        second = eg_start(*self.orphan_args, unknown)
        assert await wait_until_gone(eg_probe, kid) == []
        await second.wait_for_output(kid)  # the orphan sweep reports the kernel


__all__ = ["ResourceManagerConformance", "wait_until_gone", "FAILING_ARGV", "HANGING_ARGV", "KernelCode", "LANGUAGE_CODE"]
