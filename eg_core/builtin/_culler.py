"""The idle-kernel culler: Enterprise Gateway's (jupyter_server's) culling knobs and loop.

Every ``cull_interval`` seconds, a kernel whose last activity (a message from it) is older than
``cull_idle_timeout`` is shut down, unless it is busy (and ``cull_busy`` is off) or has a
websocket connection (and ``cull_connected`` is off). The reason is logged and sent to every
plugin as a ``culled`` event before the shutdown.

The settings are read again on every cycle, and a change to any of them wakes the loop, so a
configuration reloaded at runtime applies at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from traitlets import Bool, Float, observe, validate
from traitlets.config import SingletonConfigurable

from eg_core import Event
from eg_core.config import EnvDefaults

log = logging.getLogger("eg.culling")
DEFAULT_INTERVAL = 300.0


class KernelCuller(EnvDefaults, SingletonConfigurable):
    """Shuts down kernels that have been idle too long (Enterprise Gateway's culling)."""

    cull_idle_timeout = Float(
        0.0,
        config=True,
        help="Seconds a kernel may stay idle (no message from it) before it is shut down; 0 turns culling off.",
    ).tag(env=("EG_CULL_IDLE_TIMEOUT",))
    cull_interval = Float(DEFAULT_INTERVAL, config=True, help="Seconds between two checks for idle kernels.").tag(
        env=("EG_CULL_INTERVAL",)
    )
    cull_connected = Bool(
        False, config=True, help="Cull idle kernels that still have a websocket connection."
    ).tag(env=("EG_CULL_CONNECTED",))
    cull_busy = Bool(
        False,
        config=True,
        help="Cull busy kernels (running code) that have sent nothing for cull_idle_timeout seconds.",
    ).tag(env=("EG_CULL_BUSY",))

    @validate("cull_interval")
    def _valid_interval(self, proposal: dict) -> float:
        if proposal["value"] <= 0:
            log.warning("cull_interval must be positive; using %g s", DEFAULT_INTERVAL)
            return DEFAULT_INTERVAL
        return proposal["value"]

    @observe("cull_idle_timeout", "cull_interval", "cull_connected", "cull_busy")
    def _settings_changed(self, change: dict) -> None:
        if self._wake is not None:
            self._wake.set()

    def __init__(self, **kwargs: Any):
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._culling: dict[str, asyncio.Task] = {}
        self.gateway: Any = None
        super().__init__(**kwargs)

    # -- service -----------------------------------------------------------------------------

    def start(self, gateway: Any) -> None:
        """Start the loop over the kernels of ``gateway`` (an :class:`eg_core.GatewayAPI`)."""
        self.gateway = gateway
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._loop())
        if self.cull_idle_timeout > 0:
            log.info(self.describe())

    async def stop(self) -> None:
        """Stop checking; let culls already under way finish their shutdown (up to 30 s)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._culling:
            await asyncio.wait(list(self._culling.values()), timeout=30)

    def describe(self) -> str:
        return (
            f"culling kernels idle for more than {self.cull_idle_timeout:g} s, checked every "
            f"{self.cull_interval:g} s (connected ones: {'yes' if self.cull_connected else 'no'}, "
            f"busy ones: {'yes' if self.cull_busy else 'no'})"
        )

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.cull_interval)
                log.info("culling settings changed: %s", self.describe() if self.cull_idle_timeout > 0 else "culling is off")
                continue
            except asyncio.TimeoutError:
                pass
            try:
                self.cull_once()
            except Exception:  # a bug here must not stop culling for good
                log.exception("culling check failed")

    # -- one cycle ---------------------------------------------------------------------------

    def reason_to_cull(self, kernel: Any, now: float) -> str | None:
        """Why ``kernel`` (a :class:`eg_core.KernelSummary`) should be culled now, or None to keep it."""
        timeout = self.cull_idle_timeout
        if timeout <= 0 or kernel.changing:
            return None
        idle = now - kernel.last_activity
        if idle <= timeout:
            return None
        state = kernel.execution_state
        if state in ("starting", "restarting"):
            return None
        if state == "busy" and not self.cull_busy:
            return None
        connections = kernel.connections
        if connections and not self.cull_connected:
            return None
        busy = ", busy" if state == "busy" else ""
        return f"idle for {idle:.0f} s, timeout {timeout:g} s, {connections} connection{'' if connections == 1 else 's'}{busy}"

    def cull_once(self) -> list[str]:
        """Check every kernel once; start culling the idle ones. Returns their ids."""
        now = time.time()
        culled = []
        for kernel in self.gateway.kernels():
            if kernel.kernel_id in self._culling:
                continue
            reason = self.reason_to_cull(kernel, now)
            if reason is None:
                continue
            culled.append(kernel.kernel_id)
            task = asyncio.ensure_future(self._cull(kernel, reason, now - kernel.last_activity))
            self._culling[kernel.kernel_id] = task
            task.add_done_callback(lambda _t, k=kernel.kernel_id: self._culling.pop(k, None))
        return culled

    async def _cull(self, kernel: Any, reason: str, idle: float) -> None:
        kernel_id = kernel.kernel_id
        log.info("[kernel %s] culled (kernelspec %s, user %s): %s", kernel_id, kernel.kernel_name, kernel.user or "-", reason)
        details = {
            "reason": reason,
            "idle_seconds": round(idle, 3),
            "cull_idle_timeout": self.cull_idle_timeout,
            "execution_state": kernel.execution_state,
            "connections": kernel.connections,
        }
        try:
            await self.gateway.emit(kernel_id, Event.CULLED, details)
            await self.gateway.shutdown_kernel(kernel_id, reason=f"culled: {reason}")
        except Exception as exc:
            log.warning("[kernel %s] shutting down a culled kernel failed: %s", kernel_id, exc)
