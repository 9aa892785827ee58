"""Kernel sessions that survive the gateway: saved through the store hooks, adopted back.

Every kernel is recorded before its resource manager creates anything: a ``launching`` record
(with what the resource manager needs to find or remove it, checkpointed again once it exists)
becomes ``running`` when the launch completes, and is deleted when the kernel is shut down. A
warm pool's kernel is ``pooled`` from its launch's end until a claim makes it ``running``; its
gateway saves it again every ``POOLED_REFRESH`` seconds, so that a gateway on another host can
tell a live pool's kernel from one its ended gateway left. A gateway that crashes therefore
leaves nothing unknown: at startup the next one removes every kernel whose launch was unfinished
(its client never got an answer) or that waited in its pool, and, in standalone mode, adopts
every running one. Records name their owner (host, pid, start time); records of a live
gateway on this host are left to it, so two gateways sharing a store by mistake do not take
each other's kernels.

``availability_mode`` (Enterprise Gateway's names):

- ``standalone`` (the default while ``kernel_session_persistence`` is on): at startup the
  gateway adopts every kernel in the store (same id, same process, same state); kernels whose
  process died meanwhile are removed from the store.
- ``replication``: several gateways share one store; a request for a kernel this gateway does
  not know adopts it from the store first, so any gateway reaches any kernel.

The store itself is the ``eg_store_*`` hooks; the builtin file store (:mod:`eg_core._builtin.
file_store`) answers them unless a later plugin (a database, a webhook) does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

from .. import procinfo
from .calling import acall, acall_first, acall_first_answering, call_plugins
from .context import KernelContext, may_see
from .errors import EGError

if TYPE_CHECKING:
    from .kernels import KernelRegistry, ManagedKernel

log = logging.getLogger("eg")
RECORD_VERSION = 1
LAUNCHING, RUNNING, POOLED = "launching", "running", "pooled"
UNCLAIMED = (LAUNCHING, POOLED)  # nobody's kernel yet: removed, never adopted, when its gateway ended
# A launching record of a gateway on another host is judged abandoned this long after its
# launch timeout, a pooled one this long after its last refresh (this host's gateways are known
# alive or dead by their pid).
ABANDONED_AFTER = 60.0
POOLED_REFRESH = float(os.environ.get("EG_POOLED_RECORD_REFRESH") or 20.0)


def _stored_owner(record: dict[str, Any]) -> str:
    """The kernel's owner (:attr:`KernelContext.owner`) as a stored record names it."""
    try:
        owner = record["provisioner"]["eg"].get("owner", "")
    except (KeyError, TypeError, AttributeError):
        return ""
    return owner if isinstance(owner, str) else ""


def _merged(answers: list[Any]) -> list[dict[str, Any]]:
    """Every store's records, one per kernel id (the first store's, i.e. the last registered)."""
    records: dict[Any, dict[str, Any]] = {}
    for answer in answers:
        for record in answer or []:
            key = record.get("kernel_id") if isinstance(record, dict) else None
            if key is None or key not in records:
                records[key if key is not None else id(record)] = record
    return list(records.values())


class SessionPersistence:
    def __init__(self, registry: "KernelRegistry", mode: str):
        self.registry = registry
        self.mode = mode
        self.hook = registry.pm.hook
        self._adopting: dict[str, asyncio.Future] = {}
        self._refresher: asyncio.Task | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.owner = procinfo.identity()

    def _lock(self, kernel_id: str) -> asyncio.Lock:
        """The kernel's record lock: its writes land in the order they were asked for."""
        lock = self._locks.get(kernel_id)
        if lock is None:
            lock = self._locks[kernel_id] = asyncio.Lock()
        return lock

    async def save(self, managed: "ManagedKernel", status: str = RUNNING, only_if: Callable[[], bool] | None = None) -> None:
        """Store what another gateway process needs to take the kernel over (``running``), or
        to find and remove what its launch created so far (``launching``); with ``only_if``,
        only if it still holds once the kernel's earlier writes are done."""
        async with self._lock(managed.kernel_id):
            if only_if is None or only_if():
                await self._write(managed, status)

    async def _write(self, managed: "ManagedKernel", status: str) -> None:
        record = {
            "version": RECORD_VERSION,
            "kernel_id": managed.kernel_id,
            "kernel_name": managed.kernel.kernel_name,
            "user": managed.kernel.user,
            "status": status,
            "owner": self.owner,
            "saved_at": time.time(),
            "provisioner": await managed.launch.saved(),
        }
        _, not_asked = await acall_first_answering(self.hook.eg_store_save, record=record)
        # A record lives in one store: one that declined an earlier record of this kernel (a
        # resource manager's store before its backend could hold the record) forgets it.
        await call_plugins(self.hook.eg_store_delete, not_asked, kernel_id=managed.kernel_id)

    async def pooled(self, managed: "ManagedKernel") -> None:
        """Called when a warm pool's launch completed: record the kernel as ``pooled``, and keep
        refreshing the records of this gateway's waiting kernels while there are any."""
        await self.save(managed, POOLED, only_if=lambda: self._waiting(managed))
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh_pooled())

    async def _refresh_pooled(self) -> None:
        """Every ``POOLED_REFRESH`` seconds, save the waiting pooled kernels' records again (their
        ``saved_at`` says the pool's gateway lives); ends when none waits."""
        while True:
            await asyncio.sleep(POOLED_REFRESH)
            waiting = [m for m in list(self.registry.unlisted.values()) if self._waiting(m)]
            if not waiting:
                return
            for managed in waiting:
                try:
                    await self.save(managed, POOLED, only_if=lambda m=managed: self._waiting(m))
                except Exception as exc:
                    log.warning("[kernel %s] could not refresh its pooled session record: %s", managed.kernel_id, exc)

    def _waiting(self, managed: "ManagedKernel") -> bool:
        """Whether the kernel still waits in its pool: not claimed (nor being bound), not stopping."""
        kernel = managed.kernel
        return (kernel.pooled and "claimed_by" not in kernel.handles and not managed.stopping
                and self.registry.unlisted.get(managed.kernel_id) is managed)

    def close(self) -> None:
        """Called when the gateway stops serving: no more refreshes (a stopping gateway shuts its
        pools' kernels down, deleting their records)."""
        if self._refresher is not None:
            self._refresher.cancel()

    def track(self, managed: "ManagedKernel") -> None:
        """Record the kernel's launches: each launch (and relaunch) checkpoints a ``launching``
        record through ``kernel.checkpoint()``."""
        managed.kernel._checkpoint = lambda: self.save(managed, LAUNCHING)

    async def delete(self, kernel_id: str) -> None:
        async with self._lock(kernel_id):
            await acall_first(self.hook.eg_store_delete, kernel_id=kernel_id)

    async def load(self, kernel_id: str) -> dict[str, Any] | None:
        return await acall_first(self.hook.eg_store_load, kernel_id=kernel_id)

    async def recover(self) -> tuple[int, int]:
        """At startup: remove every kernel whose launch a dead gateway left unfinished, or that
        waited in its pool, and, in standalone mode, adopt every running one. Returns (adopted,
        removed)."""
        records = [r for r in _merged(await acall(self.hook.eg_store_load_all)) if self._ours_to_judge(r)]
        unfinished = [r for r in records if r.get("status") in UNCLAIMED]
        removed = await asyncio.gather(*(self._remove_unfinished(r) for r in unfinished))
        adopted: list = []
        if self.mode == "standalone":
            adopted = await asyncio.gather(*(self._adopt_once(r) for r in records if r.get("status") not in UNCLAIMED))
        return sum(1 for m in adopted if m is not None), sum(removed)

    async def stored_kernel_ids(self) -> set[str]:
        """The ids of every kernel the store records: adopted here, left to a live gateway of
        this host, launching elsewhere, or another gateway's in replication mode. None of
        them is an orphan (``eg_reconcile``)."""
        records = _merged(await acall(self.hook.eg_store_load_all))
        return {r["kernel_id"] for r in records if isinstance(r, dict) and isinstance(r.get("kernel_id"), str)}

    def _ours_to_judge(self, record: Any) -> bool:
        """Whether this gateway may act on ``record``: not one of a live gateway on this host,
        nor (from another host) a launch that may still be under way."""
        if not isinstance(record, dict):
            return False
        owner = record.get("owner")
        if procinfo.is_running_here(owner):
            return False
        status = record.get("status")
        if status in UNCLAIMED and isinstance(owner, dict) and owner.get("host") != self.owner["host"]:
            timeout = ((record.get("provisioner") or {}).get("eg", {}).get("launch_timeout") or 0) if status == LAUNCHING else 0
            saved = record.get("saved_at") or 0
            return isinstance(timeout, (int, float)) and isinstance(saved, (int, float)) and time.time() > saved + timeout + ABANDONED_AFTER
        return True

    async def adopt(self, kernel_id: str, viewer: str | None = None) -> "ManagedKernel | None":
        """Adopt one kernel from the store, if it is there, launched and alive (replication
        mode), and ``viewer`` may see it: another user's kernel is left as it is."""
        record = await self.load(kernel_id)
        if not record or record.get("status") in UNCLAIMED:
            return None
        if not may_see(viewer, _stored_owner(record)):
            return None
        return await self._adopt_once(record)

    async def adopt_visible(self, viewer: str | None = None) -> "list[ManagedKernel]":
        """Replication mode, before a listing: adopt every launched kernel of the shared store that
        ``viewer`` may see and this gateway does not know yet, so that every replica lists the same
        kernels (a client behind a balancing Service asks any). Returns the kernels adopted."""
        records = [r for r in _merged(await acall(self.hook.eg_store_load_all)) if isinstance(r, dict)
                   and r.get("kernel_id") not in self.registry.kernels and r.get("status") not in UNCLAIMED
                   and may_see(viewer, _stored_owner(r))]
        adopted = await asyncio.gather(*(self._adopt_once(r) for r in records))
        return [k for k in adopted if k is not None]

    async def _remove_unfinished(self, record: dict[str, Any]) -> bool:
        """Remove what an unfinished launch created (its client never learned of the kernel), or
        a kernel that waited in an ended gateway's warm pool."""
        kernel_id = record.get("kernel_id")
        restored = self._restore(record)
        if restored is None:
            return False
        managed, info = restored
        launch = managed.launch
        try:
            await launch.restore(info)
            await asyncio.wait_for(launch.kill(restart=False), 30)
            await asyncio.wait_for(launch.cleanup(restart=False), 30)
        except Exception as exc:
            log.warning("[kernel %s] could not remove what its unfinished launch left: %s", kernel_id, exc)
            return False
        managed.km.cleanup_connection_file()
        await self.delete(kernel_id)
        if record.get("status") == POOLED:
            log.warning("[kernel %s] removed: it waited in the warm pool of a gateway that ended", kernel_id)
        else:
            log.warning("[kernel %s] removed: a gateway that ended during its launch left it unfinished", kernel_id)
        return True

    def _restore(self, record: dict[str, Any]) -> "tuple[ManagedKernel, dict] | None":
        """A kernel manager for a stored record, not yet attached to anything."""
        kernel_id = record.get("kernel_id")
        try:
            info = record["provisioner"]
            kernel = KernelContext.from_json({k: v for k, v in info["eg"].items() if k != "process_info"})
            entry = self.registry.catalog.get(kernel.kernel_name)
        except EGError as exc:
            log.warning("[kernel %s] not adopted: %s", kernel_id, exc.message)
            return None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("[kernel %s] not adopted: its stored session is incomplete (%s)", kernel_id, exc)
            return None
        managed = self.registry.new_managed(entry, self.registry.new_launch(kernel))
        managed.km.adopted(connection_file_exists=os.path.exists(managed.km.connection_file))  # the launching gateway's
        return managed, info

    async def _adopt_once(self, record: Any) -> "ManagedKernel | None":
        kernel_id = record.get("kernel_id") if isinstance(record, dict) else None
        if not isinstance(kernel_id, str):
            log.warning("Skipping a stored kernel session without a kernel id")
            return None
        if kernel_id in self.registry.kernels:
            return self.registry.kernels[kernel_id]
        pending = self._adopting.get(kernel_id)
        if pending is None:
            pending = self._adopting[kernel_id] = asyncio.ensure_future(self._adopt(kernel_id, record))
            pending.add_done_callback(lambda _: self._adopting.pop(kernel_id, None))
        return await asyncio.shield(pending)

    async def _adopt(self, kernel_id: str, record: dict[str, Any]) -> "ManagedKernel | None":
        restored = self._restore(record)
        if restored is None:
            return None
        managed, info = restored
        kernel = managed.kernel
        km = managed.km
        try:
            await managed.launch.restore(info)
            km.load_connection_info(kernel.connection_info)
            alive = await managed.launch.poll() is None
        except Exception as exc:
            log.warning("[kernel %s] not adopted: %s", kernel_id, exc)
            return None
        if not alive:
            log.info("[kernel %s] its process ended while no gateway watched it; removing it from the store", kernel_id)
            await self.delete(kernel_id)
            await managed.launch.cleanup(restart=False)
            return None
        managed.adopt()
        self.registry.kernels[kernel_id] = managed
        if self.mode == "standalone":
            await self.save(managed)  # now ours
        log.info("[kernel %s] adopted (%s on %s, user %s)", kernel_id, kernel.kernel_name, kernel.resource_manager, kernel.user)
        await self.registry.emit(kernel, "adopted", {"mode": self.mode})
        return managed
