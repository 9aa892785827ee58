"""The running kernels: start, watch, interrupt, restart, shut down, and their API models.

Each kernel is driven by a jupyter_client ``AsyncKernelManager`` whose provisioner calls the
kernel's resource-manager hooks (:mod:`eg_core._runtime.provisioner`), and bridged to websocket clients
by a :class:`eg_core._runtime.channels.KernelBridge`.
"""

from __future__ import annotations

import asyncio
import collections
import getpass
import logging
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import zmq.asyncio
from jupyter_core.paths import jupyter_runtime_dir

from .calling import acall, acall_first, implemented
from .channels import KernelBridge, notice_parts, status_parts
from .context import KernelContext, may_see
from .env import kernel_env, request_user, validate_request_env
from .errors import BadRequest, EGError, LaunchFailed, NotFound
from .history import EventHistory
from ..identity import Identity
from .catalog import KernelSpecCatalog
from ..config import finite_number
from .deadline import Deadline
from .launch import KernelLaunch, run_phase
from .logs import KernelManagerLog, one_line
from .plugins import ResourceManagerHooks, resource_manager_hooks
from .provisioner import EGKernelManager

log = logging.getLogger("eg")

# The JSON Schema dialect of a kernelspec's metadata.parameters (JEP 87's).
PARAMETERS_SCHEMA = "http://json-schema.org/draft-07/schema#"
_UNPUBLISHED: set[tuple[str, str]] = set()  # (kernelspec, why) already logged
RECENTLY_ENDED = 1000
TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


PORT_TAKEN_RETRIES = 2


async def _exit_account(launch: KernelLaunch) -> str:
    """The resource manager's account of a kernel's exit ("" if none, or when it fails or takes
    more than 10 s: it is a courtesy)."""
    try:
        return await asyncio.wait_for(launch.describe_exit(), 10) or ""
    except Exception:
        return ""


def _port_taken(managed: ManagedKernel, exc: LaunchFailed, account: str = "") -> str | None:
    """Whether a launch failed because a port chosen for the kernel (free when chosen, by the
    gateway or by eg's launcher) was bound by another process before the kernel bound it, not
    a timeout: the line that says so (from the error or ``account``, the kernel's exit), else None."""
    if (
        exc.status == 504
        or not (managed.launch.chose_ports or managed.kernel.state.get("launch_key"))
        or exc.phase not in ("confirm_startup", "connection_info", "kernel_info")
    ):
        return None
    lines = f"{exc.message}\n{account}".splitlines()
    return next((line.strip() for line in lines if "Address already in use" in line), None)


def _log_launch_error(kernel: KernelContext, exc: EGError) -> None:
    """One line per failed launch: ERROR naming the phase, or WARNING for a refusal (4xx); the
    traceback of an unexpected error at DEBUG. The request's access log line then stays at DEBUG."""
    if exc.status < 500:
        kernel.log.warning("launch of %s refused (%d %s): %s", kernel.kernel_name, exc.status, exc.reason, one_line(exc.message))
    else:
        phase = getattr(exc, "phase", None) or "launch"
        message = one_line(exc.message)
        if message.startswith(f"{phase}: "):
            message = message[len(phase) + 2:]
        kernel.log.error("launch of %s on %s failed in phase %s: %s", kernel.kernel_name, kernel.resource_manager, phase, message)
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        kernel.log.debug("the launch failure's traceback", exc_info=(type(cause), cause, cause.__traceback__))
    exc.logged = True


class ManagedKernel:
    """One kernel: its context, kernel manager, bridge, state and watcher."""

    def __init__(self, registry: "KernelRegistry", km: EGKernelManager):
        self.registry = registry
        self.km = km
        self.launch: KernelLaunch = km.launch
        self.kernel = kernel = km.launch.kernel
        self.bridge = KernelBridge(
            kernel.kernel_id, registry.zmq_context, self._on_status, registry.settings.buffer_offline_messages,
            registry.settings.heartbeat_interval,
        )
        self.execution_state = "starting"
        self.started = time.time()  # launched, or adopted by this gateway process
        self.busy_since: float | None = None
        self.lock = asyncio.Lock()
        self.restart_count = 0
        self.stopping = False
        self.restarting = False
        self.owner = True  # launched here (or adopted at startup): restarts it when it dies
        self.from_pool = False  # claimed from a warm pool
        self.claim_saved = False  # a warm pool's binding saved its session record
        self._watcher: asyncio.Task | None = None

    @property
    def kernel_id(self) -> str:
        return self.kernel.kernel_id

    def model(self) -> dict[str, Any]:
        return {
            "id": self.kernel_id,
            "name": self.kernel.kernel_name,
            "last_activity": datetime.fromtimestamp(self.bridge.last_activity, timezone.utc).strftime(TIMESTAMP),
            "execution_state": self.state(),
            "connections": self.bridge.connections,
        }

    def state(self) -> str:
        """The execution state the kernel reported, or ``unresponsive`` while it does not echo
        its heartbeat (e.g. stopped with SIGSTOP)."""
        if not self.bridge.responsive and self.execution_state not in ("starting", "restarting", "dead"):
            return "unresponsive"
        return self.execution_state

    def _on_status(self, state: str) -> None:
        if state and not self.restarting:
            self.execution_state = state
            if state != "busy":
                self.busy_since = None
            elif self.busy_since is None:
                self.busy_since = time.time()

    def _tell_clients(self, state: str) -> None:
        self.bridge.publish(status_parts(f"eg-{self.kernel_id}", state), None)

    def notify_clients(self, text: str) -> None:
        """Send every client a stderr ``stream`` message from the gateway, as output of the
        request behind the kernel's last status (the running cell, while busy)."""
        self.bridge.publish(notice_parts(f"eg-{self.kernel_id}", self.bridge.status_parent, text), None)

    # -- launch ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Phase ``kernel_info`` (in what is left of the launch's deadline, at most
        ``kernel_info_timeout``): connect the bridge and wait for the kernel to answer, failing
        at once if the kernel process ends first."""
        deadline, timings = self.launch.deadline, self.launch.timings
        info = self.km.get_connection_info()
        if self.bridge.info:
            self.bridge.reconnect(info)
        else:
            self.bridge.connect(info)
        ready = asyncio.ensure_future(self.bridge.wait_ready())
        ended = asyncio.ensure_future(self.launch.wait())
        info_timeout = self.registry.settings.kernel_info_timeout
        if info_timeout < deadline.left():
            deadline = Deadline(info_timeout)
        try:
            await run_phase(
                "kernel_info", deadline, asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED), timings, self.kernel
            )
            if not ready.done():
                raise LaunchFailed("kernel_info", f"the kernel exited (status {ended.result()}) before answering kernel_info")
            ready.result()
        finally:
            ready.cancel()
            ended.cancel()
        self.execution_state = "idle"
        self._watcher = asyncio.ensure_future(self._watch())

    def adopt(self) -> None:
        """Take over a running kernel launched by another gateway process: connect without
        waiting (it may be busy), learn its state from iopub and a kernel_info probe."""
        self.bridge.connect(self.km.get_connection_info())
        self.execution_state = "unknown"
        asyncio.ensure_future(self.bridge.wait_ready()).add_done_callback(self._probed)
        self._watcher = asyncio.ensure_future(self._watch())

    def _probed(self, probe: asyncio.Future) -> None:
        if not probe.cancelled() and probe.exception() is None and self.execution_state == "unknown":
            self.execution_state = "idle"

    async def _watch(self) -> None:
        """Wait for the kernel to end; when nobody asked it to, report it dead and auto-restart."""
        try:
            status = await self.launch.wait()
        except asyncio.CancelledError:
            return
        except Exception as exc:
            log.warning("[kernel %s] watching it failed: %s", self.kernel_id, exc)
            return
        if self.stopping or self.restarting:
            return
        if self.kernel.pooled:  # nobody uses it yet: the pool replaces it
            self.execution_state = "dead"
            self.registry.ended(self.kernel_id, "died while waiting in a warm pool")
            log.warning("[kernel %s] died with status %s while waiting in a warm pool", self.kernel_id, status)
            await self.registry._forget_launch(self.kernel_id)
            await self.registry.emit(self.kernel, "died", {"status": status, "pooled": True})
            return
        persistence = self.registry.persistence
        if persistence is not None and persistence.mode == "replication":
            if await persistence.load(self.kernel_id) is None:  # shut down through another gateway
                log.info("[kernel %s] ended; another gateway shut it down", self.kernel_id)
                self.stopping = True
                self.bridge.close("shut down through another gateway")
                self.registry.ended(self.kernel_id, "shut down through another gateway", self.kernel.owner)
                return
        self.execution_state = "dead"
        self._tell_clients("dead")
        why = await self.launch.describe_exit()
        log.warning("[kernel %s] died with status %s", self.kernel_id, status)
        await self.registry.emit(self.kernel, "died", {"status": status, "reason": why})
        settings = self.registry.settings
        if self.owner and settings.autorestart and self.restart_count < settings.restart_limit:
            self.restart_count += 1
            log.info("[kernel %s] auto-restart %d of %d", self.kernel_id, self.restart_count, settings.restart_limit)
            try:
                await self.restart(now=True)
            except EGError as exc:
                log.error("[kernel %s] auto-restart failed: %s", self.kernel_id, exc.message)

    # -- actions ---------------------------------------------------------------------------

    async def interrupt(self) -> None:
        async with self.lock:
            await self.km.interrupt_kernel()
        log.info("[kernel %s] interrupted (%s mode)", self.kernel_id, self.km.kernel_spec.interrupt_mode)
        await self.registry.emit(self.kernel, "interrupted", {})

    async def restart(self, now: bool = False) -> None:
        """Restart in place: same kernel id, same websockets; clients see ``restarting``."""
        async with self.lock:
            if self.stopping:
                raise NotFound(f"Kernel does not exist: {self.kernel_id}")
            start = time.monotonic()
            self.restarting = self.kernel.restarting = True
            self.execution_state = "restarting"
            self._tell_clients("restarting")
            if self._watcher and self._watcher is not asyncio.current_task():
                self._watcher.cancel()
            try:
                self.kernel.launch_timeout = self.registry.settings.launch_timeout
                self.launch.begin()
                await self.launch.apply_policies()
                for attempt in range(PORT_TAKEN_RETRIES + 1):
                    try:
                        await self.km.restart_kernel(now=now)
                        await self.connect()
                        break
                    except LaunchFailed as exc:
                        taken = _port_taken(self, exc, await _exit_account(self.launch))
                        if attempt == PORT_TAKEN_RETRIES or not taken:
                            raise
                        self.kernel.log.warning("a port chosen for the kernel was taken before it bound it (%s); restarting again with new ports", taken)
                        self.km.new_ports()
                        now = True
            except BaseException as exc:
                self.execution_state = "dead"
                self._tell_clients("dead")
                if not isinstance(exc, EGError):
                    exc = LaunchFailed("restart", f"{type(exc).__name__}: {exc}")
                await self.launch.abort(exc)
                raise exc
            finally:
                self.restarting = self.kernel.restarting = False
        duration = time.monotonic() - start
        await self.registry.persist(self)
        log.info("[kernel %s] restarted in %.3fs", self.kernel_id, duration)
        await self.registry.emit(self.kernel, "restarted", {"duration": round(duration, 4), "phases": dict(self.launch.timings)})

    async def shutdown(self, now: bool = False, reason: str = "shut down") -> None:
        """Stop the kernel; ``reason`` (e.g. "culled: idle for 600 s") reaches its websockets'
        close frames, the ``shut_down`` event, and later 404 answers about this kernel."""
        async with self.lock:
            if self.stopping:
                return
            self.stopping = True
            if self._watcher:
                self._watcher.cancel()
            start = time.monotonic()
            self._tell_clients("dead")
            if self.registry.persistence is not None:  # first, so replicas see a shutdown, not a death
                await self.registry.persistence.delete(self.kernel_id)
            try:
                await self.km.shutdown_kernel(now=now)
            finally:
                self.bridge.close(reason)
                self.registry.ended(self.kernel_id, reason, self.kernel.owner)
        log.info("[kernel %s] %s in %.3fs", self.kernel_id, reason, time.monotonic() - start)
        await self.registry.emit(self.kernel, "shut_down", {"reason": reason})


class KernelRegistry:
    """All kernels of this gateway."""

    def __init__(self, settings: Any, catalog: KernelSpecCatalog, pm: Any):
        self.settings = settings
        self.catalog = catalog
        self.pm = pm
        self.kernels: dict[str, ManagedKernel] = {}
        # Running but not listed, culled or persisted: warm pool kernels waiting to be claimed.
        self.unlisted: dict[str, ManagedKernel] = {}
        self.pending: set[str] = set()
        self.recently_ended: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self.history = EventHistory()
        self.persistence: Any = None  # a SessionPersistence when availability_mode is set
        self.zmq_context = zmq.asyncio.Context()
        # Two sockets per kernel and three per client session: not libzmq's default of 1023.
        self.zmq_context.max_sockets = self.zmq_context.get(zmq.SOCKET_LIMIT)
        self.runtime_dir = jupyter_runtime_dir()
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)

    def hooks(self, resource_manager: str) -> ResourceManagerHooks:
        """The resource-manager hooks of ``resource_manager`` (for a policy asking about a kernel)."""
        return resource_manager_hooks(self.pm, resource_manager)

    def get(self, kernel_id: str) -> ManagedKernel:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            raise self._not_found(kernel_id)
        return kernel

    def _not_found(self, kernel_id: str, viewer: str | None = None) -> NotFound:
        reason, owner = self.recently_ended.get(kernel_id, ("", ""))
        if not may_see(viewer, owner):
            reason = ""
        return NotFound(f"Kernel does not exist: {kernel_id}" + (f" ({reason})" if reason else ""))

    def ended(self, kernel_id: str, reason: str, owner: str = "") -> None:
        """Forget a kernel, remembering why for a while (404 answers to its owner and the admins
        say it was culled...)."""
        self.kernels.pop(kernel_id, None)
        self.unlisted.pop(kernel_id, None)
        self.recently_ended[kernel_id] = (reason, owner)
        while len(self.recently_ended) > RECENTLY_ENDED:
            self.recently_ended.popitem(last=False)

    async def lookup(self, kernel_id: str, viewer: str | None = None) -> ManagedKernel:
        """A kernel by id, for ``viewer`` (see :func:`eg_core._runtime.context.may_see`): another user's kernel is
        :class:`NotFound` exactly as an unknown id. In replication mode one this gateway does
        not know yet is adopted from the shared store first."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None and self.persistence is not None and self.persistence.mode == "replication":
            kernel = await self.persistence.adopt(kernel_id, viewer)
            if kernel is not None:
                kernel.owner = False
        if kernel is None or not may_see(viewer, kernel.kernel.owner):
            raise self._not_found(kernel_id, viewer)
        return kernel

    async def persist(self, managed: ManagedKernel) -> None:
        if self.persistence is not None:
            try:
                await self.persistence.save(managed)
            except Exception as exc:
                log.error("[kernel %s] could not save its session: %s", managed.kernel_id, exc)

    async def adopt_listed(self, viewer: str | None = None) -> None:
        """Called before a listing: in replication mode, adopt the shared store's kernels ``viewer``
        may see that this gateway does not know yet (launched through another gateway)."""
        if self.persistence is not None and self.persistence.mode == "replication":
            for kernel in await self.persistence.adopt_visible(viewer):
                kernel.owner = False

    def models(self, viewer: str | None = None) -> list[dict[str, Any]]:
        """The models of the kernels ``viewer`` may see (:func:`eg_core._runtime.context.may_see`)."""
        return [k.model() for k in list(self.kernels.values()) if may_see(viewer, k.kernel.owner)]

    async def emit(self, kernel: KernelContext, event: str, details: dict[str, Any]) -> None:
        """Record a lifecycle event in the kernel's history and tell every plugin about it; an
        observer's error is logged only."""
        await self.history.add(kernel, event, details)
        try:
            await acall(self.pm.hook.eg_kernel_event, kernel=kernel, event=event, details=details)
        except Exception as exc:
            log.warning("[kernel %s] an eg_kernel_event observer failed on %r: %s", kernel.kernel_id, event, exc)

    def _kernel_id(self, env: dict[str, str]) -> str:
        requested = env.get("KERNEL_ID")
        if not requested:
            return str(uuid.uuid4())
        try:
            kernel_id = str(uuid.UUID(requested))
        except ValueError:
            raise BadRequest("KERNEL_ID must be a UUID such as 1b7a6d4e-6f5a-4c47-9a0e-2f8a1c9b3d21") from None
        if kernel_id in self.kernels or kernel_id in self.pending:
            raise EGError(f"a kernel with id {kernel_id} already exists", status=409, reason="Conflict")
        return kernel_id

    def _launch_timeout(self, env: dict[str, str]) -> float:
        limit = float(self.settings.launch_timeout)
        value = env.get("KERNEL_LAUNCH_TIMEOUT")
        if value is None:
            return limit
        try:
            requested = finite_number(value)
        except ValueError:
            raise BadRequest("KERNEL_LAUNCH_TIMEOUT must be a (finite) number of seconds") from None
        if requested <= 0:
            raise BadRequest("KERNEL_LAUNCH_TIMEOUT must be positive")
        return min(requested, limit)

    def user_allowed(self, user: str, entry: Any, groups: frozenset[str] = frozenset()) -> bool:
        """Whether every plugin lets ``user`` (a member of ``groups``) use the kernelspec ``entry``."""
        answers = self.pm.hook.eg_user_allowed(user=user, kernel_name=entry.name, config=entry.config, groups=groups)
        return False not in answers

    def launch_parameters(self, entry: Any) -> dict[str, Any] | None:
        """The JSON Schema of what a start request may set for kernelspec ``entry`` (its
        ``metadata.parameters``): the kernelspec's own properties, then every answer to
        ``eg_launch_parameters`` over them; None when there are none. A kernelspec whose
        settings are not valid gets none (its start answers 400 saying why)."""
        spec = entry.spec.to_dict()
        own = (spec.get("metadata") or {}).get("parameters")
        properties = dict(own.get("properties") or {}) if isinstance(own, dict) else {}
        kernel = KernelContext(kernel_id="", kernel_name=entry.name, resource_manager=entry.resource_manager,
                               spec={**spec, "resource_dir": entry.resource_dir}, config=dict(entry.config),
                               env={k: str(v) for k, v in (spec.get("env") or {}).items()})
        try:
            answers = self.hooks(entry.resource_manager).eg_launch_parameters(kernel=kernel)
        except EGError as exc:
            if (entry.name, exc.message) not in _UNPUBLISHED:  # once, not at every listing
                _UNPUBLISHED.add((entry.name, exc.message))
                log.warning("kernelspec %s: no launch parameters: %s", entry.name, exc.message)
            return None
        for answer in reversed(answers):  # registration order: later plugins win
            properties.update(answer or {})
        if not properties:
            return None
        return {**(own if isinstance(own, dict) else {}), "$schema": PARAMETERS_SCHEMA, "type": "object",
                "properties": properties}

    def _context(self, entry: Any, kernel_id: str, request_env: dict[str, str], user: str) -> KernelContext:
        """A new kernel's context: its kernelspec, and its env built from the request's values."""
        spec = {**entry.spec.to_dict(), "resource_dir": entry.resource_dir}
        env = kernel_env(
            request_env=request_env, spec=spec, gateway_env=dict(os.environ), inherited_envs=self.settings.inherited_envs,
            client_envs=self.settings.client_envs, kernel_id=kernel_id, user=user,
        )
        return KernelContext(
            kernel_id=kernel_id, kernel_name=entry.name, resource_manager=entry.resource_manager, spec=spec,
            config=dict(entry.config), env=env, user=user,
        )

    async def start(
        self, name: str | None, env: Any = None, path: str | None = None, identity: Identity | None = None
    ) -> ManagedKernel:
        """Start a kernel of kernelspec ``name`` (the default when None) with the request's env,
        for ``identity`` (the user of a per-user token, if any; None for the service token)."""
        principal = identity.name if identity else None
        entry = self.catalog.get(name or self.settings.default_kernel_name)
        request_env = validate_request_env(env)
        kernel_id = self._kernel_id(request_env)
        user = request_user(request_env, principal, self.settings.bind_username)
        kernel = self._context(entry, kernel_id, request_env, user)
        kernel.user_from_request = "KERNEL_USERNAME" in request_env or bool(principal)
        kernel.owner = principal or (user if kernel.user_from_request else "")
        kernel.groups = identity.groups if identity else frozenset()
        kernel.cwd = request_env.get("KERNEL_WORKING_DIR") or path or None
        kernel.launch_timeout = self._launch_timeout(request_env)
        launch = self.new_launch(kernel)
        self.pending.add(kernel_id)
        try:
            await self.emit(kernel, "requested", {})
            await self._apply_policies(launch)
            if "KERNEL_ID" not in request_env and implemented(self.pm.hook.eg_claim_kernel):
                claimed = await self._claim(kernel)
                if claimed is not None:
                    return claimed
            return await self._launch(entry, launch)
        finally:
            self.pending.discard(kernel_id)

    def new_launch(self, kernel: KernelContext) -> KernelLaunch:
        """The launch object of a new (or restored) kernel, begun."""
        launch = KernelLaunch(kernel, self.pm, self.settings.port_range)
        kernel.notify = lambda event, details: self.emit(kernel, event, details)
        launch.begin()
        return launch

    async def _apply_policies(self, launch: KernelLaunch) -> None:
        """Phase ``before_launch``, once per start, before a pool claim or a launch."""
        try:
            await launch.apply_policies()
        except EGError as exc:
            _log_launch_error(launch.kernel, exc)
            await self.emit(launch.kernel, "launch_failed", {"phase": "before_launch", "error": exc.message})
            raise

    async def _claim(self, request: KernelContext) -> ManagedKernel | None:
        """Offer the request to ``eg_claim_kernel`` (a warm pool) after the launch policies
        (``eg_before_launch``) accepted it; a claimed kernel is listed under its own id."""
        start = time.monotonic()
        try:
            managed = await acall_first(self.pm.hook.eg_claim_kernel, kernel=request)
        except Exception as exc:
            request.log.warning("claiming a pooled kernel failed, starting one: %s", exc)
            return None
        if isinstance(managed, str):  # a kernel id, from GatewayAPI.bind_pooled
            managed = self.unlisted.get(managed)
            if managed is None or managed.kernel.handles.pop("claimed_by", None) != request.kernel_id:
                request.log.warning("eg_claim_kernel answered a kernel that is not bound to this request; starting one")
                return None
        if managed is None:
            return None
        self.unlisted.pop(managed.kernel_id, None)
        managed.kernel.pooled = False
        managed.from_pool = True
        self.kernels[managed.kernel_id] = managed
        if not managed.claim_saved:  # the binding saved it already
            await self.persist(managed)
        duration = round(time.monotonic() - start, 4)
        managed.kernel.log.info("claimed from the warm pool of %s by %s in %.3fs (request %s)", managed.kernel.kernel_name, managed.kernel.user, duration, request.kernel_id)
        details = {"request_id": request.kernel_id, "duration": duration, "bind": managed.kernel.state.pop("pool_bind_seconds", None)}
        await self.emit(managed.kernel, "pool_claimed", details)
        return managed

    async def start_pooled(self, name: str, prepare: Callable[[ManagedKernel], Awaitable[None]] | None = None) -> ManagedKernel:
        """Launch a kernel of kernelspec ``name`` for nobody yet (a warm pool's): the gateway's
        own user, the kernelspec's env, no request values. It is held in :attr:`unlisted` (not
        listed, culled, persisted or counted per user) until a claim lists it; ``prepare`` runs
        on the started kernel before it shows there (as claimable)."""
        entry = self.catalog.get(name)
        kernel_id = str(uuid.uuid4())
        kernel = self._context(entry, kernel_id, {}, getpass.getuser())
        kernel.launch_timeout = float(self.settings.launch_timeout)
        kernel.pooled = True
        launch = self.new_launch(kernel)
        self.pending.add(kernel_id)
        try:
            await self._apply_policies(launch)
            return await self._launch(entry, launch, prepare)
        finally:
            self.pending.discard(kernel_id)

    def new_managed(self, entry: Any, launch: KernelLaunch) -> ManagedKernel:
        """A kernel manager over ``launch`` (jupyter_client's side), wrapped for the registry."""
        kernel = launch.kernel
        kernel.notify = lambda event, details: self.emit(kernel, event, details)
        km = EGKernelManager(
            spec=entry.spec, launch=launch, connection_file=os.path.join(self.runtime_dir, f"eg-kernel-{kernel.kernel_id}.json"),
            context=self.zmq_context, log=KernelManagerLog(log, {"kernel_id": kernel.kernel_id}),
        )
        managed = ManagedKernel(self, km)
        kernel.survives_gateway = self.persistence is not None
        if self.persistence is not None:
            self.persistence.track(managed)
        return managed

    async def _launch(
        self, entry: Any, launch: KernelLaunch, prepare: Callable[[ManagedKernel], Awaitable[None]] | None = None
    ) -> ManagedKernel:
        kernel = launch.kernel
        start = time.monotonic()
        try:
            for attempt in range(PORT_TAKEN_RETRIES + 1):
                managed = self.new_managed(entry, launch)
                try:
                    await self._start_once(managed)
                    break
                except LaunchFailed as exc:
                    taken = _port_taken(managed, exc)
                    if attempt == PORT_TAKEN_RETRIES or not taken:
                        raise
                    kernel.log.warning("a port chosen for the kernel was taken before it bound it (%s); launching again with new ports", taken)
        except EGError as exc:
            _log_launch_error(kernel, exc)
            await self._forget_launch(kernel.kernel_id)
            details = {"phase": getattr(exc, "phase", None), "error": exc.message}
            if getattr(exc, "backend_log", None):
                details["backend_log"] = exc.backend_log
            await self.emit(kernel, "launch_failed", details)
            raise
        if prepare is not None:
            await prepare(managed)
        if kernel.pooled:
            self.unlisted[kernel.kernel_id] = managed
            if self.persistence is not None:
                try:
                    await self.persistence.pooled(managed)
                except Exception as exc:
                    log.error("[kernel %s] could not save its session: %s", kernel.kernel_id, exc)
        else:
            self.kernels[kernel.kernel_id] = managed
            await self.persist(managed)
        duration = time.monotonic() - start
        timings = dict(launch.timings)
        log.info(
            "[kernel %s] launched %s on %s in %.3fs (%s)%s",
            kernel.kernel_id, kernel.kernel_name, kernel.resource_manager, duration,
            ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()), " into the warm pool" if kernel.pooled else "",
        )
        try:
            await acall(self.pm.hook.eg_after_launch, kernel=kernel)
        except Exception as exc:
            log.warning("[kernel %s] an eg_after_launch observer failed: %s", kernel.kernel_id, exc)
        details = {"duration": round(duration, 4), "phases": timings}
        if kernel.pooled:
            details["pooled"] = True
        await self.emit(kernel, "launched", details)
        return managed

    async def _start_once(self, managed: ManagedKernel) -> None:
        """One launch attempt; a failed one has removed what it created."""
        km, kernel = managed.km, managed.kernel
        try:
            await km.start_kernel(kernel_id=kernel.kernel_id)
        except EGError:
            raise
        except Exception as exc:
            raise LaunchFailed("launch_process", f"{type(exc).__name__}: {exc}") from exc
        try:
            await managed.connect()
        except BaseException as exc:
            managed.bridge.close()
            await managed.launch.abort(exc)
            managed.launch.release_ports()
            km.cleanup_connection_file()
            raise

    async def _forget_launch(self, kernel_id: str) -> None:
        """Delete the launching record of a launch that failed (and removed what it made)."""
        if self.persistence is not None:
            try:
                await self.persistence.delete(kernel_id)
            except Exception as exc:
                log.error("[kernel %s] could not delete its session record: %s", kernel_id, exc)

    async def shutdown_all(self) -> None:
        await asyncio.gather(*(k.shutdown() for k in list(self.kernels.values())), return_exceptions=True)

    def leave_running(self) -> None:
        """Stop watching every kernel but leave it running (and stored) for the next gateway."""
        for managed in list(self.kernels.values()):
            managed.stopping = True
            managed.km.keep_connection_file()
            if managed._watcher:
                managed._watcher.cancel()
            managed.bridge.close("the gateway is stopping; the kernel keeps running")
        self.kernels.clear()

    def close(self) -> None:
        self.zmq_context.destroy(linger=0)

