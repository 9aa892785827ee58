"""The startup sweep: what a backend still runs for kernels the gateway does not know.

A gateway that was killed (or a cleanup that failed) can leave containers, jobs or
applications behind. At startup, once the gateway has adopted the kernels of its session store,
every plugin's ``eg_reconcile(known_kernel_ids)`` runs; a resource manager that can list what it
runs per kernel hands that list to :func:`sweep`::

    @hookimpl
    async def eg_reconcile(known_kernel_ids):
        await orphans.sweep("slurm", known_kernel_ids, list_jobs, cancel_job, policy=settings.orphans)

``policy`` is ``"log"`` (report each orphan as a warning), ``"remove"`` (remove it, then report)
or ``"ignore"``. A backend that cannot be reached is logged, never raised: the gateway starts.

Kernels that are plain processes (the local resource manager, eg-ssh) carry their owner in
their environment: :func:`owner_marks` (the gateway's ``gateway_id``, and the gateway process
with its host, pid and start time) next to ``KERNEL_ID``. :func:`procinfo.kernel_sessions
<eg_core.procinfo.kernel_sessions>` lists such kernels and :func:`owned_sessions` keeps those
this gateway may judge: the same resource manager and gateway id, and no live gateway process
owning them (neither this one nor another gateway on this host).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import socket
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping

from traitlets import Unicode

from . import procinfo
from ._runtime.logs import one_line

log = logging.getLogger("eg.orphans")
POLICIES = ("log", "remove", "ignore")
GATEWAY_ID_VAR, OWNER_VAR = "EG_GATEWAY_ID", "EG_GATEWAY_OWNER"
_GATEWAY_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}\Z")


@dataclass(frozen=True)
class Resource:
    """One thing a backend runs for a kernel: ``kind`` (``container``, ``job``...), the
    backend's ``id`` and ``name``, the ``kernel_id`` it belongs to and its ``state``."""

    kind: str
    id: str
    name: str
    kernel_id: str
    state: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unknown(resources: Iterable[Resource], known_kernel_ids: Iterable[str]) -> list[Resource]:
    """The resources whose kernel id is not in ``known_kernel_ids``."""
    known = set(known_kernel_ids)
    return [r for r in resources if r.kernel_id not in known]


async def sweep(
    resource_manager: str,
    known_kernel_ids: Iterable[str],
    list_resources: Callable[[], Awaitable[Iterable[Resource]]],
    remove: Callable[[Resource], Awaitable[bool]] | None,
    *,
    policy: str = "log",
) -> list[Resource]:
    """Find the orphans of ``resource_manager`` and, per ``policy``, remove them.

    ``list_resources()`` returns every kernel resource of this gateway on the backend;
    ``remove(resource)`` removes one and returns whether it was there. Returns the orphans found
    (with ``remove``: those removed). Each is logged as a warning naming it and the kernel.
    """
    if policy not in POLICIES:
        raise ValueError(f"orphan policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if policy == "ignore":
        return []
    try:
        found = unknown(await list_resources(), known_kernel_ids)
    except Exception as exc:  # an unreachable backend must not keep the gateway from starting
        unreachable(resource_manager, exc)
        return []
    if policy == "remove" and remove is not None:
        removed = []
        for resource in found:
            try:
                if await remove(resource):
                    removed.append(resource)
            except Exception as exc:
                log.warning("%s: cannot remove %s %s: %s", resource_manager, resource.kind, resource.name, exc)
        found = removed
    for r in found:
        log.warning(
            "%s: %s %s %s %s (%s) of kernel %s, unknown to this gateway",
            resource_manager, "removed" if policy == "remove" else "found orphan", r.kind, r.name, r.id[:12],
            r.state, r.kernel_id,
        )
    return found


_unreachable: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("eg_unreachable", default=None)


def unreachable(resource_manager: str, reason: object) -> None:
    """Report that ``resource_manager``'s startup sweep could not reach its backend (``reason``:
    an exception or a short text). During the gateway's startup sweep the core gathers every
    such report into one warning line once all ``eg_reconcile`` implementations ran; elsewhere
    it is logged at once."""
    reports = _unreachable.get()
    text = one_line(str(reason)) or type(reason).__name__
    if reports is None:
        log.warning("%s: cannot list kernel resources: %s", resource_manager, text)
    else:
        reports.setdefault(resource_manager, text)


@contextlib.contextmanager
def gathering_unreachable() -> Iterator[dict[str, str]]:
    """Within the block, :func:`unreachable` reports land in the yielded dict (resource manager
    to reason) instead of the log. Used by the core around the startup sweep."""
    reports: dict[str, str] = {}
    token = _unreachable.set(reports)
    try:
        yield reports
    finally:
        _unreachable.reset(token)


# -- kernels that are processes ---------------------------------------------------------------


def default_gateway_id() -> str:
    """``eg-<host name>``: the same for every start of a gateway on this host, and different
    from a gateway's on another host that runs kernels on the same machines."""
    return f"eg-{socket.gethostname()}"


class GatewayId(Unicode):
    """A ``gateway_id`` setting: letters, digits and ``_ . : @ -`` (at most 128), default
    :func:`default_gateway_id`."""

    def __init__(self, **kwargs: Any):
        super().__init__(default_gateway_id(), **kwargs)

    def validate(self, obj: Any, value: Any) -> str:
        value = super().validate(obj, value)
        if not _GATEWAY_ID.match(value):
            self.error(obj, value, info="letters, digits and '_', '.', ':', '@', '-' (at most 128)")
        return value


def owner_marks(resource_manager: str, gateway_id: str) -> dict[str, str]:
    """The variables that name a kernel process's owner, for its environment (next to the
    ``KERNEL_ID`` the core sets): the gateway id, and this gateway process."""
    owner = {"resource_manager": resource_manager, **procinfo.identity()}
    return {GATEWAY_ID_VAR: gateway_id, OWNER_VAR: json.dumps(owner, separators=(",", ":"))}


def owned_sessions(
    sessions: Iterable[Mapping[str, Any]], resource_manager: str, gateway_id: str, where: str = "",
) -> list[Resource]:
    """The kernel sessions (:func:`procinfo.kernel_sessions <eg_core.procinfo.kernel_sessions>`)
    this gateway may treat as orphans when no store knows them: marked with ``resource_manager``
    and ``gateway_id``, and not owned by a live gateway process of this host (this one, e.g. a
    warm pool's kernels, or another one sharing the id). ``where`` (``user@host``) goes into the
    resource's name. A resource's ``id`` is ``<pid>:<start time>`` (see :func:`session_of`)."""
    me = procinfo.identity()
    found = []
    for session in sessions:
        marks = session.get("marks") or {}
        try:
            owner = json.loads(marks.get(OWNER_VAR) or "null")
        except ValueError:
            owner = None
        if not isinstance(owner, dict) or owner.get("resource_manager") != resource_manager:
            continue
        if marks.get(GATEWAY_ID_VAR) != gateway_id or procinfo.is_running_here(owner):
            continue
        identity = {k: owner.get(k) for k in me}
        if identity == me:
            continue
        pid, started = int(session["pid"]), int(session["started"])
        found.append(Resource(
            "process group", f"{pid}:{started}", f"pid {pid}{' on ' + where if where else ''}", str(marks["KERNEL_ID"]),
            f"its gateway, pid {owner.get('pid')} on {owner.get('host')}, is gone"
            if owner.get("host") == me["host"] else f"its gateway ran on {owner.get('host')}",
        ))
    return found


def session_of(resource: Resource) -> tuple[int, int]:
    """``(pid, start time)`` of a resource from :func:`owned_sessions`."""
    pid, _, started = resource.id.partition(":")
    return int(pid), int(started)


__all__ = [
    "Resource", "sweep", "unknown", "unreachable", "gathering_unreachable", "POLICIES", "GatewayId", "default_gateway_id", "owner_marks", "owned_sessions",
    "session_of", "GATEWAY_ID_VAR", "OWNER_VAR",
]
