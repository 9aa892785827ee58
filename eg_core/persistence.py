"""Kernel sessions that survive the gateway: saved through the store hooks, adopted back.

``availability_mode`` (Enterprise Gateway's names):

- ``standalone``: at startup the gateway adopts every kernel in the store (same id, same
  process, same state); kernels whose process died meanwhile are removed from the store.
- ``replication``: several gateways share one store; a request for a kernel this gateway does
  not know adopts it from the store first, so any gateway reaches any kernel.

The store itself is the ``eg_store_*`` hooks; the builtin file store (:mod:`eg_core.builtin.
file_store`) answers them unless a later plugin (a database, a webhook) does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ._calling import acall, acall_first
from .context import KernelContext
from .errors import EGError

if TYPE_CHECKING:
    from .kernels import KernelRegistry, ManagedKernel

log = logging.getLogger("eg")
RECORD_VERSION = 1


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

    async def save(self, managed: "ManagedKernel") -> None:
        """Store what another gateway process needs to take the kernel over."""
        record = {
            "version": RECORD_VERSION,
            "kernel_id": managed.kernel_id,
            "kernel_name": managed.kernel.kernel_name,
            "user": managed.kernel.user,
            "saved_at": time.time(),
            "provisioner": await managed.km.provisioner.get_provisioner_info(),
        }
        await acall_first(self.hook.eg_store_save, record=record)

    async def delete(self, kernel_id: str) -> None:
        await acall_first(self.hook.eg_store_delete, kernel_id=kernel_id)

    async def load(self, kernel_id: str) -> dict[str, Any] | None:
        return await acall_first(self.hook.eg_store_load, kernel_id=kernel_id)

    async def adopt_all(self) -> int:
        """Adopt every stored kernel (standalone mode, at startup); returns how many run."""
        records = _merged(await acall(self.hook.eg_store_load_all))
        adopted = await asyncio.gather(*(self._adopt_once(r) for r in records))
        return sum(1 for m in adopted if m is not None)

    async def adopt(self, kernel_id: str) -> "ManagedKernel | None":
        """Adopt one kernel from the store, if it is there and alive (replication mode)."""
        record = await self.load(kernel_id)
        return await self._adopt_once(record) if record else None

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
        try:
            info = record["provisioner"]
            kernel = KernelContext.from_json({k: v for k, v in info["eg"].items() if k != "process_info"})
            entry = self.registry.catalog.get(kernel.kernel_name)
        except EGError as exc:
            log.warning("[kernel %s] not adopted: %s", kernel_id, exc.message)
            return None
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("[kernel %s] not adopted: its stored session is incomplete (%s)", kernel_id, exc)
            return None
        managed = self.registry.new_managed(entry, kernel)
        km = managed.km
        try:
            await km.provisioner.load_provisioner_info(info)
            km.load_connection_info(kernel.connection_info)
            alive = await km.provisioner.poll() is None
        except Exception as exc:
            log.warning("[kernel %s] not adopted: %s", kernel_id, exc)
            return None
        if not alive:
            log.info("[kernel %s] its process ended while no gateway watched it; removing it from the store", kernel_id)
            await self.delete(kernel_id)
            await km.provisioner.cleanup(restart=False)
            return None
        km._launch_args = {"kernel_id": kernel_id}
        km._attempted_start = True  # so jupyter_client's restart treats it as started here
        managed.adopt()
        self.registry.kernels[kernel_id] = managed
        log.info("[kernel %s] adopted (%s on %s, user %s)", kernel_id, kernel.kernel_name, kernel.resource_manager, kernel.user)
        await self.registry.emit(kernel, "adopted", {"mode": self.mode})
        return managed
