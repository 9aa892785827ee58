"""The kernel culler: Enterprise Gateway's (jupyter_server's) idle culling, plus a busy timeout,
a maximum age and a warning before the cull, globally or per kernelspec.

Every ``cull_interval`` seconds each kernel's policy (:class:`CullPolicy`: the global settings,
then its kernelspec's ``metadata.culling``, then the operator's ``per_kernelspec`` entry for its
name or pattern) decides when it is due:

- *idle*: its last activity (a message from it) is older than ``idle_timeout``, unless it is busy
  (and ``busy`` is off) or has a websocket connection (and ``connected`` is off);
- *busy*: it has been busy longer than ``busy_timeout`` (a runaway job), connected or not;
- *age*: it has run longer than ``max_age``.

``warning`` seconds before it is due, its clients get a stderr ``stream`` message saying when and
why (once per due time: activity that moves an idle kernel's due time re-arms it). The reason is
logged and sent to every plugin as a ``culled`` event before the shutdown, and clients' close
frames and later 404s say it.

The settings are read again on every cycle, and a change to any of them wakes the loop, so a
configuration reloaded at runtime applies at once.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Mapping

from traitlets import Bool, Dict, Float, observe, validate
from traitlets.config import SingletonConfigurable

from eg_core import Event
from eg_core.config import EnvDefaults

log = logging.getLogger("eg.culling")
DEFAULT_INTERVAL = 300.0
NUMBERS = ("idle_timeout", "busy_timeout", "max_age", "warning")
SWITCHES = ("connected", "busy")


@dataclass(frozen=True)
class CullPolicy:
    """When one kernel is culled. Seconds; 0 turns a rule off."""

    idle_timeout: float = 0.0
    busy_timeout: float = 0.0
    max_age: float = 0.0
    warning: float = 0.0
    connected: bool = False  # the idle rule applies to connected kernels too
    busy: bool = False  # the idle rule applies to busy kernels too (silent for idle_timeout)

    def over(self, values: Mapping[str, Any]) -> "CullPolicy":
        """This policy with ``values`` (a kernelspec's or the operator's entry) applied."""
        return replace(self, **{k: (float(v) if k in NUMBERS else bool(v)) for k, v in values.items()})

    def due(self, kernel: Any) -> tuple[float, str] | None:
        """The earliest time ``kernel`` (a :class:`eg_core.KernelSummary`) is due to be culled and
        the rule that makes it due (``idle``, ``busy``, ``age``), or None when none applies."""
        if kernel.changing or kernel.execution_state in ("starting", "restarting"):
            return None
        due = []
        if self.idle_timeout > 0 and (self.busy or not kernel.busy) and (self.connected or not kernel.connections):
            due.append((kernel.last_activity + self.idle_timeout, "idle"))
        if self.busy_timeout > 0 and kernel.busy and kernel.busy_since is not None:
            due.append((kernel.busy_since + self.busy_timeout, "busy"))
        if self.max_age > 0 and kernel.started:
            due.append((kernel.started + self.max_age, "age"))
        return min(due) if due else None

    def reason(self, rule: str, kernel: Any, now: float) -> str:
        """Why ``kernel`` is culled (or about to be) by ``rule``, for logs, clients and 404s."""
        if rule == "busy":
            return f"busy for {now - kernel.busy_since:.0f} s, busy timeout {self.busy_timeout:g} s"
        if rule == "age":
            return f"running for {now - kernel.started:.0f} s, maximum age {self.max_age:g} s"
        connections = kernel.connections
        busy = ", busy" if kernel.busy else ""
        return (f"idle for {now - kernel.last_activity:.0f} s, timeout {self.idle_timeout:g} s, "
                f"{connections} connection{'' if connections == 1 else 's'}{busy}")


def check_entry(values: Any, where: str) -> Mapping[str, Any]:
    """``values`` if it is a valid culling entry (keys of :class:`CullPolicy`, non-negative
    seconds, booleans); raises ValueError saying what is wrong, naming ``where``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: must be an object like {{\"idle_timeout\": 600, \"warning\": 60}}")
    for key, value in values.items():
        if key in NUMBERS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{where}: {key} must be a number of seconds, 0 or more (got {value!r})")
        elif key in SWITCHES:
            if not isinstance(value, bool):
                raise ValueError(f"{where}: {key} must be true or false (got {value!r})")
        else:
            raise ValueError(f"{where}: unknown key {key!r}; known: {', '.join(NUMBERS + SWITCHES)}")
    return values


class KernelCuller(EnvDefaults, SingletonConfigurable):
    """Shuts down kernels idle, busy or running too long (Enterprise Gateway's culling, extended
    per kernelspec)."""

    cull_idle_timeout = Float(
        0.0,
        config=True,
        help="Seconds a kernel may stay idle (no message from it) before it is shut down; 0 turns idle culling off.",
    ).tag(env=("EG_CULL_IDLE_TIMEOUT",))
    cull_interval = Float(DEFAULT_INTERVAL, config=True, help="Seconds between two checks for kernels to cull.").tag(
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
    cull_busy_timeout = Float(
        0.0, config=True, help="Seconds a kernel may stay busy (a runaway job) before it is shut down, connected or not; 0: no limit.",
    ).tag(env=("EG_CULL_BUSY_TIMEOUT",))
    cull_max_age = Float(0.0, config=True, help="Seconds a kernel may run at all before it is shut down; 0: no limit.").tag(
        env=("EG_CULL_MAX_AGE",)
    )
    cull_warning = Float(
        0.0, config=True,
        help="Seconds before a cull that the kernel's clients are warned (a stderr message in the notebook); 0: no warning.",
    ).tag(env=("EG_CULL_WARNING",))
    per_kernelspec = Dict(
        config=True,
        help="Culling per kernelspec name or pattern (fnmatch; an exact name first, then patterns in order), over the "
        "global settings and the kernelspec's own metadata.culling, e.g. {\"gpu_*\": {\"idle_timeout\": 600, "
        "\"busy_timeout\": 7200, \"max_age\": 86400, \"warning\": 120}}. Keys: idle_timeout, busy_timeout, max_age, "
        "warning (seconds), connected, busy (true/false: the idle rule applies to connected / busy kernels).",
    ).tag(env=("EG_CULL_PER_KERNELSPEC",), example='{"gpu_*": {"idle_timeout": 600, "warning": 60}}')

    @validate("cull_interval")
    def _valid_interval(self, proposal: dict) -> float:
        if proposal["value"] <= 0:
            log.warning("cull_interval must be positive; using %g s", DEFAULT_INTERVAL)
            return DEFAULT_INTERVAL
        return proposal["value"]

    @validate("per_kernelspec")
    def _valid_entries(self, proposal: dict) -> dict:
        for name, values in proposal["value"].items():
            check_entry(values, f"KernelCuller.per_kernelspec[{name!r}]")
        return proposal["value"]

    @observe("cull_idle_timeout", "cull_interval", "cull_connected", "cull_busy", "cull_busy_timeout", "cull_max_age",
             "cull_warning", "per_kernelspec")
    def _settings_changed(self, change: dict) -> None:
        if self._wake is not None:
            self._wake.set()

    def __init__(self, **kwargs: Any):
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._culling: dict[str, asyncio.Task] = {}
        self._warned: dict[str, tuple[str, int]] = {}  # kernel id -> the (rule, due time) its clients were warned of
        self._bad_metadata: set[str] = set()  # kernelspecs whose metadata.culling was reported invalid
        self.gateway: Any = None
        super().__init__(**kwargs)

    # -- service -----------------------------------------------------------------------------

    def start(self, gateway: Any) -> None:
        """Start the loop over the kernels of ``gateway`` (an :class:`eg_core.GatewayAPI`)."""
        self.gateway = gateway
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._loop())
        if self.active():
            log.info(self.describe())

    async def stop(self) -> None:
        """Stop checking; let culls already under way finish their shutdown (up to 30 s)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._culling:
            await asyncio.wait(list(self._culling.values()), timeout=30)

    def active(self) -> bool:
        """Whether any rule may cull (a kernelspec's own metadata.culling counts at each check)."""
        return bool(self.cull_idle_timeout > 0 or self.cull_busy_timeout > 0 or self.cull_max_age > 0 or self.per_kernelspec)

    def describe(self) -> str:
        if self.cull_idle_timeout > 0:
            text = (f"culling kernels idle for more than {self.cull_idle_timeout:g} s, checked every {self.cull_interval:g} s "
                    f"(connected ones: {'yes' if self.cull_connected else 'no'}, busy ones: {'yes' if self.cull_busy else 'no'})")
        else:
            text = f"culling kernels, checked every {self.cull_interval:g} s"
        if self.cull_busy_timeout > 0:
            text += f"; busy for more than {self.cull_busy_timeout:g} s"
        if self.cull_max_age > 0:
            text += f"; running for more than {self.cull_max_age:g} s"
        if self.per_kernelspec:
            text += f"; per kernelspec: {', '.join(self.per_kernelspec)}"
        if self.cull_warning > 0:
            text += f"; clients are warned {self.cull_warning:g} s before"
        return text

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.cull_interval)
                log.info("culling settings changed: %s", self.describe() if self.active() else "culling is off")
                continue
            except asyncio.TimeoutError:
                pass
            try:
                self.cull_once()
            except Exception:  # a bug here must not stop culling for good
                log.exception("culling check failed")

    # -- one cycle ---------------------------------------------------------------------------

    def policy(self, kernel: Any) -> CullPolicy:
        """``kernel``'s policy: the global settings, its kernelspec's ``metadata.culling``, then
        the operator's ``per_kernelspec`` entry (its exact name, else the first matching pattern)."""
        policy = CullPolicy(self.cull_idle_timeout, self.cull_busy_timeout, self.cull_max_age, self.cull_warning,
                            self.cull_connected, self.cull_busy)
        own = kernel.metadata.get("culling")
        if own is not None:
            try:
                policy = policy.over(check_entry(own, f"kernelspec {kernel.kernel_name}: metadata.culling"))
            except ValueError as exc:
                if kernel.kernel_name not in self._bad_metadata:
                    self._bad_metadata.add(kernel.kernel_name)
                    log.warning("%s; ignored", exc)
        entries = self.per_kernelspec
        name = kernel.kernel_name if kernel.kernel_name in entries else next(
            (pattern for pattern in entries if fnmatch.fnmatchcase(kernel.kernel_name, pattern)), None)
        return policy.over(entries[name]) if name is not None else policy

    def reason_to_cull(self, kernel: Any, now: float) -> str | None:
        """Why ``kernel`` (a :class:`eg_core.KernelSummary`) should be culled now, or None to keep it."""
        policy = self.policy(kernel)
        due = policy.due(kernel)
        if due is None or now < due[0]:
            return None
        return policy.reason(due[1], kernel, now)

    def cull_once(self) -> list[str]:
        """Check every kernel once: warn the clients of those soon due, start culling those due.
        Returns the ids of those being culled."""
        now = time.time()
        culled = []
        kernels = self.gateway.kernels()
        for stale in set(self._warned) - {k.kernel_id for k in kernels}:
            del self._warned[stale]
        for kernel in kernels:
            if kernel.kernel_id in self._culling:
                continue
            policy = self.policy(kernel)
            due = policy.due(kernel)
            if due is None:
                continue
            when, rule = due
            if now < when:
                if policy.warning > 0 and now >= when - policy.warning and self._warned.get(kernel.kernel_id) != (rule, int(when)):
                    self._warned[kernel.kernel_id] = (rule, int(when))
                    self._warn(kernel, policy, rule, when - now)
                continue
            culled.append(kernel.kernel_id)
            task = asyncio.ensure_future(self._cull(kernel, policy, rule, policy.reason(rule, kernel, now)))
            self._culling[kernel.kernel_id] = task
            task.add_done_callback(lambda _t, k=kernel.kernel_id: self._culling.pop(k, None))
        return culled

    def _warn(self, kernel: Any, policy: CullPolicy, rule: str, left: float) -> None:
        why = {
            "idle": f"it has been idle (timeout {policy.idle_timeout:g} s); any activity postpones this",
            "busy": f"it has been busy too long (busy timeout {policy.busy_timeout:g} s); interrupt it to keep the kernel",
            "age": f"it reaches its maximum age ({policy.max_age:g} s); save your work",
        }[rule]
        log.info("[kernel %s] warned its clients: culled in %.0f s (%s)", kernel.kernel_id, left, rule)
        try:
            self.gateway.notify_clients(kernel.kernel_id, f"[eg] This kernel will be shut down in about {left:.0f} s: {why}.\n")
        except Exception as exc:  # the kernel went away meanwhile
            log.debug("[kernel %s] could not warn its clients: %s", kernel.kernel_id, exc)

    async def _cull(self, kernel: Any, policy: CullPolicy, rule: str, reason: str) -> None:
        kernel_id = kernel.kernel_id
        log.info("[kernel %s] culled (kernelspec %s, user %s): %s", kernel_id, kernel.kernel_name, kernel.user or "-", reason)
        details = {
            "reason": reason,
            "rule": rule,
            "idle_seconds": round(time.time() - kernel.last_activity, 3),
            "cull_idle_timeout": policy.idle_timeout,
            "busy_timeout": policy.busy_timeout,
            "max_age": policy.max_age,
            "execution_state": kernel.execution_state,
            "connections": kernel.connections,
        }
        try:
            await self.gateway.emit(kernel_id, Event.CULLED, details)
            await self.gateway.shutdown_kernel(kernel_id, reason=f"culled: {reason}")
        except Exception as exc:
            log.warning("[kernel %s] shutting down a culled kernel failed: %s", kernel_id, exc)
