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
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Iterable

log = logging.getLogger("eg.orphans")
POLICIES = ("log", "remove", "ignore")


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
        log.warning("%s: cannot list kernel resources at startup: %s", resource_manager, exc)
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


__all__ = ["Resource", "sweep", "unknown", "POLICIES"]
