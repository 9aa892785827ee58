"""The kernel launch sequence.

The driver is :func:`launch_sequence`; :class:`eg_core._runtime.provisioner.HookProvisioner` runs it from
jupyter_client's ``launch_kernel`` and :mod:`eg_core._runtime.kernels` finishes it.
"""

from __future__ import annotations

import time
from typing import Any

import asyncio

from .. import remote
from .calling import acall, acall_first, implemented
from .context import KernelContext
from .errors import EGError, LaunchFailed
from ..lifecycle import Phase


class Deadline:
    """The time left of one launch; each phase runs in what remains."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(self.end - time.monotonic(), 0.0)


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
    With ``kernel``, a phase still running after 5 s is logged as it goes on."""
    start = time.monotonic()
    slow = _SlowPhaseLog(kernel, phase, deadline) if kernel is not None else None
    try:
        return await asyncio.wait_for(awaitable, timeout=deadline.left())
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
