"""The gateway object that ``eg_startup`` and ``eg_shutdown`` receive: what a policy plugin
(culling, metrics, limits, an audit or quota plugin) may see and do, and nothing more.

::

    @hookimpl
    def eg_startup(gateway):
        for k in gateway.kernels():          # KernelSummary: id, kernelspec, user, activity...
            ...
        await gateway.shutdown_kernel(kernel_id, reason="over quota")
        await gateway.emit(kernel_id, "quota_exceeded", {"limit": 3})
        gateway.settings["launch_timeout"]   # the gateway's settings (no secrets)
        await gateway.start_pooled("python3")  # a warm-pool kernel, for eg_claim_kernel (bind_pooled)
        gateway.kernelspecs("k8s")           # the kernelspecs a resource manager runs (name, spec, config)
        MySettings.instance()                # a plugin's own settings class (see eg_configurables)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .config import cpus, memory_bytes
from ._runtime.context import KernelContext
from ._runtime.errors import BadRequest, NotFound

# The request variables a kernel asks resources with (Enterprise Gateway's names).
_REQUEST_ENV = {"cpus": "KERNEL_CPUS", "memory": "KERNEL_MEMORY", "gpus": "KERNEL_GPUS"}

# Settings that stay out of :attr:`GatewayAPI.settings`.
_SECRET_SETTINGS = {"auth_token", "keyfile"}


@dataclass(frozen=True)
class KernelSummary:
    """One kernel as a policy sees it (a snapshot; ask :meth:`GatewayAPI.kernels` again for news).

    ``last_activity`` is the epoch time of the kernel's last message; ``connections`` counts its
    websocket clients; ``busy`` is ``execution_state == "busy"``; ``changing`` is True while the
    kernel is being restarted or shut down. ``started`` is the epoch time the kernel was launched
    (or adopted by this gateway process), ``busy_since`` when its current busy spell began (None
    unless busy); ``metadata`` is its kernelspec's ``metadata`` (read-only).
    """

    kernel_id: str
    kernel_name: str
    resource_manager: str
    user: str
    execution_state: str
    last_activity: float
    connections: int
    changing: bool
    started: float = 0.0
    busy_since: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def busy(self) -> bool:
        return self.execution_state == "busy"


class GatewayAPI:
    """The running gateway, for plugins: list kernels, shut one down, emit an event, read settings.

    Passed as ``gateway`` to ``eg_startup`` and ``eg_shutdown``; keep it for the life of the
    plugin's services. Methods are safe to call from the event loop only.
    """

    def __init__(self, app: Any):
        self._app = app

    @property
    def _registry(self) -> Any:
        return self._app.kernels

    def kernels(self) -> list[KernelSummary]:
        """Every kernel the gateway holds now (launches under way are not included)."""
        return [_summary(managed) for managed in list(self._registry.kernels.values())]

    def kernel(self, kernel_id: str) -> KernelSummary:
        """One kernel; raises :class:`eg_core.NotFound` when the gateway does not hold it."""
        managed = self._registry.kernels.get(kernel_id)
        if managed is None:
            raise NotFound(f"Kernel does not exist: {kernel_id}")
        return _summary(managed)

    def pooled_kernels(self) -> list[KernelSummary]:
        """Warm-pool kernels: running, not yet claimed by a request (not in :meth:`kernels`)."""
        return [_summary(managed) for managed in list(self._registry.unlisted.values())]

    async def start_pooled(self, kernel_name: str) -> KernelSummary:
        """Start a kernel of kernelspec ``kernel_name`` for no request yet (a warm pool's): the
        gateway's own user, the kernelspec's env, no request values. It waits in
        :meth:`pooled_kernels` (not listed, culled, persisted or counted per user; ``max_kernels``
        counts it) until an ``eg_claim_kernel`` implementation hands it to a request
        (:meth:`bind_pooled`), and is shut down when the gateway stops. Raises what a launch
        raises (:class:`eg_core.NotFound` for an unknown kernelspec, :class:`eg_core.LaunchFailed`)."""
        return _summary(await self._registry.start_pooled(kernel_name))

    async def bind_pooled(self, kernel_id: str, request: KernelContext) -> None:
        """For ``eg_claim_kernel``: give the waiting pooled kernel ``kernel_id`` to ``request``
        (the hook's ``kernel``): its user, and its ``KERNEL_*`` env and working directory,
        applied in the running kernel by a silent ``execute_request`` (Python kernels). The hook
        then returns ``kernel_id``, and the core lists the kernel as the request's.

        Raises :class:`eg_core.NotFound` when no waiting pooled kernel has that id (another
        claim took it, or it died), :class:`eg_core.BadRequest` with the reason when it cannot
        serve the request: a value only a launch applies (``KERNEL_IMAGE``...), its resource
        manager's ``eg_pool_fit``, something to bind in a kernel that is not Python. A kernel
        whose binding failed halfway is shut down."""
        from ._runtime.pool_binding import BindFailed, bind, misfit

        managed = self._registry.unlisted.get(kernel_id)
        if managed is None or "claimed_by" in managed.kernel.handles or managed.execution_state == "dead":
            raise NotFound(f"no waiting pooled kernel {kernel_id}")
        managed.kernel.handles["claimed_by"] = request.kernel_id  # before any await: no two claims share it
        try:
            reason = await misfit(managed.kernel, request, self._registry.hooks(managed.kernel.resource_manager))
            if reason is not None:
                raise BadRequest(f"pooled kernel {kernel_id} cannot serve the request: {reason}")
            await bind(managed, request)
        except (BindFailed, asyncio.TimeoutError) as exc:
            asyncio.ensure_future(managed.shutdown(now=True, reason="its warm-pool binding failed"))
            raise BadRequest(f"binding the request to pooled kernel {kernel_id} failed: {exc or 'no reply'}") from None
        except BaseException:
            managed.kernel.handles.pop("claimed_by", None)
            raise

    def kernelspecs(self, resource_manager: str | None = None) -> list[KernelContext]:
        """A context per kernelspec the gateway offers (``kernel_name``, ``spec`` and ``config``
        set, ``kernel_id`` empty, as ``eg_doctor`` gets them), only ``resource_manager``'s when
        given: e.g. for a resource manager to learn at startup which backends its kernelspecs name."""
        return [
            KernelContext(kernel_id="", kernel_name=name, resource_manager=entry.resource_manager,
                          spec=entry.spec.to_dict(), config=dict(entry.config))
            for name, entry in sorted(self._app.catalog.available().items())
            if resource_manager is None or entry.resource_manager == resource_manager
        ]

    @property
    def launching(self) -> int:
        """How many launches are under way."""
        return len(self._registry.pending)

    async def shutdown_kernel(self, kernel_id: str, reason: str) -> None:
        """Shut a kernel down; ``reason`` goes into the log, the ``shut_down`` event, the clients'
        close frames and later 404 answers. Raises :class:`eg_core.NotFound` for an unknown id."""
        await self._registry.get(kernel_id).shutdown(reason=reason)

    def requested_resources(self, kernel: KernelContext) -> dict[str, float]:
        """What ``kernel`` (a launch request, a held kernel's context) asks of its backend:
        ``{"cpus", "memory" (bytes), "gpus"}``, each 0 when nothing is asked (GPUs infinite
        for all of a host's). Its resource
        manager's ``eg_requested_resources`` answers; without one, the request's
        ``KERNEL_CPUS``, ``KERNEL_MEMORY`` and ``KERNEL_GPUS``. Raises
        :class:`eg_core.BadRequest` for a value that is no amount."""
        answer = self._registry.hooks(kernel.resource_manager).eg_requested_resources(kernel=kernel)
        if answer is None:
            answer = {key: kernel.env[name] for key, name in _REQUEST_ENV.items() if kernel.env.get(name) not in (None, "")}
        try:
            gpus = float(answer.get("gpus", 0))  # infinity: all of a host's GPUs
            if not gpus >= 0:
                raise ValueError(f"{answer.get('gpus')!r} is not a number of GPUs")
            return {"cpus": cpus(answer.get("cpus", 0)), "memory": float(memory_bytes(answer.get("memory", 0))), "gpus": gpus}
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"kernel {kernel.kernel_name}: {exc}") from None

    def notify_clients(self, kernel_id: str, text: str) -> None:
        """Show ``text`` to every client of a held kernel: a stderr ``stream`` message from the
        gateway, as output of the kernel's running cell while it is busy (e.g. a warning before
        a cull). Raises :class:`eg_core.NotFound` for an unknown id."""
        self._registry.get(kernel_id).notify_clients(text)

    async def emit(self, kernel_id: str, event: str, details: dict[str, Any] | None = None) -> None:
        """Send ``event`` about a held kernel to every plugin's ``eg_kernel_event`` (observers'
        errors are logged, not raised). Use the names in :class:`eg_core.Event` for lifecycle
        events, your own names for others."""
        await self._registry.emit(self._registry.get(kernel_id).kernel, event, dict(details or {}))

    @property
    def settings(self) -> Mapping[str, Any]:
        """The gateway's own settings (``eg-gateway --help-all``, section ``Gateway``), read-only,
        without secrets. Plugin settings are read from the plugin's own settings class."""
        app = self._app
        return MappingProxyType(
            {name: getattr(app, name) for name in app.traits(config=True) if name not in _SECRET_SETTINGS}
        )

    @property
    def messages_relayed(self) -> dict[str, int]:
        """Kernel messages relayed so far by this gateway process, by direction."""
        from ._runtime.channels import RelayCounts

        return {"from_kernel": RelayCounts.from_kernel, "to_kernel": RelayCounts.to_kernel}


def _summary(managed: Any) -> KernelSummary:
    kernel = managed.kernel
    return KernelSummary(
        kernel_id=kernel.kernel_id,
        kernel_name=kernel.kernel_name,
        resource_manager=kernel.resource_manager,
        user=kernel.user,
        execution_state=managed.state(),
        last_activity=managed.bridge.last_activity,
        connections=managed.bridge.connections,
        changing=bool(managed.stopping or managed.restarting),
        started=managed.started,
        busy_since=managed.busy_since,
        metadata=MappingProxyType(kernel.spec.get("metadata") or {}),
    )


__all__ = ["GatewayAPI", "KernelSummary"]
