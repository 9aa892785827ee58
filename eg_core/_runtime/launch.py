"""A kernel's launches and its resource manager: :class:`KernelLaunch`, and the launch sequence.

The registry (:mod:`eg_core._runtime.kernels`) makes one :class:`KernelLaunch` per kernel and hands
it to the jupyter_client adapter (:mod:`eg_core._runtime.provisioner`) through the kernel manager.
The walk of one launch::

    KernelRegistry.start -> KernelLaunch.begin, .apply_policies (eg_before_launch)
        -> eg_claim_kernel (a warm pool), or:
        -> jupyter_client's start_kernel -> HookProvisioner.pre_launch (argv), .launch_kernel
           -> KernelLaunch.run (launch_process, confirm_startup, connection_info)
        -> ManagedKernel.connect (kernel_info) -> eg_after_launch, the "launched" event

A restart takes the same path from ``begin`` (``kernel.restarting`` set), an adopted kernel
enters at :meth:`KernelLaunch.adopt`.
"""

from __future__ import annotations

import time
from typing import Any

import asyncio

from .. import remote
from .calling import acall, acall_first, implemented
from .context import KernelContext
from .deadline import Deadline
from .errors import EGError, LaunchFailed
from ..lifecycle import Phase
from .plugins import resource_manager_hooks
from .ports import PortRange, free_ports, release_ports

_UNATTENDED_POLL_INTERVAL = 2.0
BACKEND_LOG_LINES = 50


SLOW_PHASE_SECONDS = 5.0
_WAITING_FOR = {
    "launch_process": "the resource manager to start the kernel",
    "confirm_startup": "the kernel to start (resource manager, launcher callback)",
    "connection_info": "the kernel's connection info",
    "kernel_info": "the kernel's kernel_info reply",
}


class _SlowPhaseLog:
    """Logs that a phase is still running: after 5 s, then every 15 s, until stopped."""

    def __init__(self, kernel: KernelContext, phase: str, deadline: Deadline):
        self.kernel, self.phase, self.deadline = kernel, phase, deadline
        self.start = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_later(SLOW_PHASE_SECONDS, self._report)

    def _report(self) -> None:
        self.kernel.log.info(
            "%s: still waiting for %s after %.0fs (%.0fs left of the launch timeout)",
            self.phase, _WAITING_FOR.get(self.phase, "it to finish"), time.monotonic() - self.start, self.deadline.left(),
        )
        self.handle = self.loop.call_later(3 * SLOW_PHASE_SECONDS, self._report)

    def stop(self) -> None:
        self.handle.cancel()


async def run_phase(
    phase: str, deadline: Deadline, awaitable: Any, timings: dict[str, float], kernel: KernelContext | None = None
):
    """Await one phase within the deadline; a timeout or an unexpected error fails ``phase``.
    With ``kernel``, a phase still running after 5 s is logged as it goes on, and one that ended
    is a ``progress`` event ``{"step": phase, "seconds": duration}``."""
    start = time.monotonic()
    slow = _SlowPhaseLog(kernel, phase, deadline) if kernel is not None else None
    try:
        result = await deadline.run(awaitable)
    except asyncio.TimeoutError:
        raise LaunchFailed(
            phase, f"no answer within the launch timeout of {deadline.seconds:g}s", timeout=True
        ) from None
    except EGError:
        raise
    except Exception as exc:
        raise LaunchFailed(phase, f"{type(exc).__name__}: {exc}") from exc
    finally:
        if slow is not None:
            slow.stop()
        timings[phase] = round(time.monotonic() - start, 4)
    if kernel is not None and kernel.notify is not None:
        await kernel.notify("progress", {"step": phase, "seconds": timings[phase]})
    return result


async def before_launch(pm, kernel: KernelContext) -> None:
    """Step 1 (phase ``before_launch``): every plugin's ``eg_before_launch``; env additions go
    into ``kernel.env``; a :class:`LaunchRefused` propagates as is."""
    for extra in await acall(pm.hook.eg_before_launch, kernel=kernel):
        kernel.env.update({str(k): str(v) for k, v in extra.items()})


async def launch_sequence(
    kernel: KernelContext, hooks: Any, cmd: list[str], deadline: Deadline, timings: dict[str, float]
) -> dict[str, Any]:
    """Launch a kernel through its resource manager and return its connection info.

    The whole sequence, in the order the code runs it (``hooks`` reaches the kernel's resource
    manager only; ``pm.hook`` reaches every plugin):

    1. ``pm.hook.eg_before_launch(kernel)``   policies refuse or add env  (:func:`before_launch`,
       run by ``HookProvisioner.pre_launch``, which then writes the connection file when the
       argv uses one and fills the argv templates with ``eg_launch_substitutions``)
    2. ``hooks.eg_launch_process(kernel, cmd)``  start the process / container / app, between
       two ``kernel.checkpoint()`` calls: the session store holds a "launching" record before
       anything exists, so a gateway that crashes mid-launch leaves nothing unknown
    3. ``hooks.eg_confirm_startup(kernel)``      wait for the resource manager and launcher
    4. ``hooks.eg_connection_info(kernel)``      where the kernel listens
    5. (``eg_core._runtime.kernels``) connect to the kernel and wait for ``kernel_info_reply``,
       phase ``kernel_info``, while ``hooks.eg_wait`` watches for an early exit
    6. ``pm.hook.eg_after_launch(kernel)`` and ``pm.hook.eg_kernel_event(kernel, "launched")``

    All phases share one deadline, ``kernel.launch_timeout``. When any phase from 2 on fails,
    ``hooks.eg_kill`` and ``hooks.eg_cleanup`` run before :class:`LaunchFailed` (naming the
    phase, with ``hooks.eg_describe_exit``'s text) propagates, so nothing is left behind.
    """
    try:
        await run_phase(Phase.LAUNCH_PROCESS, deadline, _recorded_launch(kernel, hooks, cmd), timings, kernel)
        await run_phase(
            Phase.CONFIRM_STARTUP, deadline, acall_first(hooks.eg_confirm_startup, kernel=kernel), timings, kernel
        )
        info = await run_phase(Phase.CONNECTION_INFO, deadline, connection_info(kernel, hooks), timings, kernel)
        if not info:
            raise LaunchFailed(Phase.CONNECTION_INFO, f"resource manager '{kernel.resource_manager}' returned none")
        return info
    except BaseException as exc:
        await abort_launch(kernel, hooks, exc)
        raise


async def connection_info(kernel: KernelContext, hooks: Any) -> dict[str, Any]:
    """``eg_connection_info``'s answer; without an implementation, ``kernel.connection_info``
    (the connection file the core wrote, or what the launcher's callback reported)."""
    if implemented(hooks.eg_connection_info):
        return await acall_first(hooks.eg_connection_info, kernel=kernel)
    return kernel.connection_info


async def _recorded_launch(kernel: KernelContext, hooks: Any, cmd: list[str]) -> None:
    await kernel.checkpoint()
    await acall_first(hooks.eg_launch_process, kernel=kernel, cmd=cmd)
    await kernel.checkpoint()


async def abort_launch(kernel: KernelContext, hooks: Any, exc: BaseException) -> None:
    """Remove whatever a failed launch created, and add the resource manager's account of the
    exit to a :class:`LaunchFailed` message."""
    if isinstance(exc, LaunchFailed):
        exc.backend_log = await backend_log(kernel, hooks, BACKEND_LOG_LINES)
    if isinstance(exc, LaunchFailed) and implemented(hooks.eg_describe_exit):
        try:
            why = await asyncio.wait_for(acall_first(hooks.eg_describe_exit, kernel=kernel), 10)
        except Exception:  # the account is a courtesy; the launch error is what matters
            why = None
        if why:
            exc.message = f"{exc.message}\n{why}"
            exc.args = (exc.message,)
    steps = {"eg_kill": lambda: acall_first(hooks.eg_kill, kernel=kernel, restart=False),
             "eg_cleanup": lambda: cleanup(kernel, hooks, restart=False)}
    for name, step in steps.items():
        try:
            await asyncio.wait_for(step(), 30)
        except Exception as err:
            kernel.log.warning("%s after a failed launch raised %s", name, err)


async def backend_log(kernel: KernelContext, hooks: Any, lines: int) -> list[str]:
    """The last ``lines`` lines of ``eg_backend_log`` (none without it, or when it fails or
    takes more than 10 s: the log is a courtesy)."""
    if not implemented(hooks.eg_backend_log):
        return []
    try:
        answer = await asyncio.wait_for(acall_first(hooks.eg_backend_log, kernel=kernel, lines=lines), 10)
    except Exception as exc:
        kernel.log.debug("eg_backend_log failed: %s", exc)
        return []
    return [str(line) for line in (answer or [])][-lines:]


async def cleanup(kernel: KernelContext, hooks: Any, restart: bool) -> None:
    """``hooks.eg_cleanup`` (optional), then what the core holds for the kernel: the response
    listener forgets its launcher callback (:func:`eg_core.remote.forget`) and the lease
    connection closes (:func:`eg_core.remote.release_lease`) and a launch key file left behind is
    removed (:func:`eg_core.remote.discard_key_file`), so no resource manager needs to."""
    try:
        if implemented(hooks.eg_cleanup):
            await acall_first(hooks.eg_cleanup, kernel=kernel, restart=restart)
    finally:
        remote.forget(kernel)
        remote.release_lease(kernel)
        await remote.discard_key_file(kernel)


class KernelLaunch:
    """Everything a kernel's launches hold, in one place: its context, its resource manager's
    hooks, the deadline and phase timings of the launch under way, the ports the gateway chose,
    whether the resource manager runs it now. Also the one caller of the resource-manager hooks
    that follow a kernel's life (poll, wait, signal, terminate, kill, cleanup, describe_exit).

    Made by the registry for each kernel (or, in a plain jupyter_client application, by the
    provisioner itself) and kept for restarts and adoption."""

    def __init__(self, kernel: KernelContext, pm: Any, port_range: str | None = None):
        self.kernel = kernel
        self.pm = pm
        self.hooks = resource_manager_hooks(pm, kernel.resource_manager)
        self.port_range = port_range
        self.deadline = Deadline(kernel.launch_timeout)
        self.timings: dict[str, float] = {}
        self.ports: list[int] = []
        self.chose_ports = False  # the gateway picked the kernel's ports (a connection file)
        self.running = False

    def begin(self) -> None:
        """A (re)launch starts: a new deadline (``kernel.launch_timeout``) and no timings yet."""
        self.deadline = Deadline(self.kernel.launch_timeout)
        self.kernel.deadline = self.deadline
        self.timings = {}

    async def apply_policies(self) -> None:
        """Phase ``before_launch``: every plugin's ``eg_before_launch`` (:func:`before_launch`),
        once per launch, before a pool claim or a launch; raises what a policy raises."""
        await run_phase(Phase.BEFORE_LAUNCH, self.deadline, before_launch(self.pm, self.kernel), self.timings, self.kernel)

    def port_range_of(self) -> PortRange | None:
        return PortRange.parse(self.kernel.config.get("port_range") or self.port_range)

    def choose_ports(self, ip: str) -> list[int]:
        """Five free ports for the kernel's channels (released when the kernel ends)."""
        self.ports = free_ports(5, ip, self.port_range_of())
        self.chose_ports = True
        return self.ports

    def release_ports(self) -> None:
        release_ports(self.ports)
        self.ports = []

    async def run(self, cmd: list[str]) -> dict[str, Any]:
        """Phases ``launch_process``, ``confirm_startup`` and ``connection_info``
        (:func:`launch_sequence`); returns the connection info. A failure has removed what the
        launch created (and the ports, unless the kernel is restarting)."""
        try:
            info = await launch_sequence(self.kernel, self.hooks, cmd, self.deadline, self.timings)
        except BaseException:
            if not self.kernel.restarting:
                self.release_ports()
            raise
        self.running = True
        return info

    async def abort(self, exc: BaseException) -> None:
        """After a launch failed past ``connection_info`` (in ``kernel_info``): :func:`abort_launch`."""
        await abort_launch(self.kernel, self.hooks, exc)

    # -- the session store --------------------------------------------------------------------

    async def saved(self) -> dict[str, Any]:
        """What the session store keeps to adopt the kernel later (jupyter_client's provisioner
        info: ``kernel_id``, ``connection_info``, and eg's context with the resource manager's
        ``eg_save_process_info``, else ``kernel.state``)."""
        if implemented(self.hooks.eg_save_process_info):
            process_info = await acall_first(self.hooks.eg_save_process_info, kernel=self.kernel)
        else:
            process_info = dict(self.kernel.state)
        return {
            "kernel_id": self.kernel.kernel_id,
            "connection_info": self.kernel.connection_info,
            "eg": {**self.kernel.to_json(), "process_info": process_info},
        }

    async def restore(self, saved: dict[str, Any]) -> None:
        """Adoption: the context from :meth:`saved`'s record, the resource manager's handles from
        ``eg_load_process_info`` (else ``kernel.state``); the kernel counts as running."""
        eg = saved["eg"]
        for name in ("env", "user", "cwd", "config", "connection_info", "launch_timeout"):
            if name in eg:
                setattr(self.kernel, name, eg[name])
        process_info = eg.get("process_info", {})
        if implemented(self.hooks.eg_load_process_info):
            await acall_first(self.hooks.eg_load_process_info, kernel=self.kernel, info=process_info)
        else:
            self.kernel.state = dict(process_info)
            self.kernel.handles.clear()
        self.running = True

    # -- the kernel's life, through its resource manager --------------------------------------

    async def poll(self) -> int | None:
        if not self.running:
            return 0
        return await acall_first(self.hooks.eg_poll, kernel=self.kernel)

    async def wait(self) -> int | None:
        """Wait for the kernel to end: ``eg_wait`` when the resource manager has it, else
        ``eg_poll`` at a slow interval."""
        if not self.running:
            return 0
        if implemented(self.hooks.eg_wait):
            status = await acall_first(self.hooks.eg_wait, kernel=self.kernel)
        else:
            while (status := await self.poll()) is None:
                await asyncio.sleep(_UNATTENDED_POLL_INTERVAL)
        self.running = False
        return status

    async def send_signal(self, signum: int) -> None:
        await acall_first(self.hooks.eg_send_signal, kernel=self.kernel, signum=signum)

    async def shutdown_requested(self, restart: bool = False) -> None:
        if implemented(self.hooks.eg_shutdown_requested):
            await acall_first(self.hooks.eg_shutdown_requested, kernel=self.kernel, restart=restart)

    async def terminate(self, restart: bool = False) -> bool:
        """``eg_terminate``; False when the resource manager has none (the caller sends SIGTERM)."""
        if not implemented(self.hooks.eg_terminate):
            return False
        await acall_first(self.hooks.eg_terminate, kernel=self.kernel, restart=restart)
        return True

    async def kill(self, restart: bool = False) -> None:
        await acall_first(self.hooks.eg_kill, kernel=self.kernel, restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        """:func:`cleanup`; the ports too, unless the kernel is restarting."""
        await cleanup(self.kernel, self.hooks, restart)
        self.running = False
        if not restart:
            self.release_ports()

    async def backend_log(self, lines: int) -> list[str]:
        """:func:`backend_log`: the tail of what the kernel's backend says about it."""
        return await backend_log(self.kernel, self.hooks, lines)

    async def describe_exit(self) -> str | None:
        if implemented(self.hooks.eg_describe_exit):
            return await acall_first(self.hooks.eg_describe_exit, kernel=self.kernel)
        return None
