"""Warm pools: kernels started ahead of requests, per kernelspec, claimed by new requests.

:class:`WarmPools` keeps ``KernelPools.pools[name]`` kernels of each kernelspec waiting (never
more than ``max_pooled_kernels`` in all), refilling in the background with at most
``refill_concurrency`` launches at a time; a kernelspec whose launches fail is retried with a
growing pause (up to a minute). A claim takes the oldest waiting kernel that fits the request
(:mod:`eg_core._runtime.pool_binding`), binds the request to it and hands it to the core, which lists it as an
ordinary kernel: it is never returned to a pool.

The waiting kernels are listed in ``<runtime dir>/eg-warm-pool-<port>.json`` (their contexts, as
the session store keeps them), so a gateway that was killed before it could shut them down has
them removed by the next gateway on that port, through their resource managers' hooks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from typing import Any

from traitlets import Dict, Float, Int
from traitlets.config import SingletonConfigurable

from .._runtime.calling import acall_first, implemented
from ..config import EnvDefaults
from .._runtime.context import KernelContext
from .._runtime.errors import EGError
from .._runtime.launch import cleanup
from .._runtime.pool_binding import BindFailed, bind, misfit, warm_up

log = logging.getLogger("eg.pools")
MAX_BACKOFF = 60.0


class KernelPools(EnvDefaults, SingletonConfigurable):
    """Kernels kept started and waiting for requests, per kernelspec."""

    pools = Dict(
        value_trait=Int(), default_value={}, config=True,
        help="Kernels to keep started and waiting, by kernelspec name, e.g. {\"python3\": 2} "
        "(EG_KERNEL_POOLS='{\"python3\": 2}'). A request for that kernelspec that fits gets one at once.",
    ).tag(env=("EG_KERNEL_POOLS",))
    max_pooled_kernels = Int(
        16, config=True, help="Kernels all pools together may hold waiting (pooled kernels count in max_kernels too)."
    ).tag(env=("EG_MAX_POOLED_KERNELS",))
    refill_concurrency = Int(
        2, config=True, help="Pool launches that may run at the same time while refilling."
    ).tag(env=("EG_POOL_REFILL_CONCURRENCY",))
    refill_delay = Float(
        1.0, config=True, help="Seconds after a claim before its replacement starts, so the claimant's first "
        "requests do not compete with a kernel start for the host's CPU.",
    ).tag(env=("EG_POOL_REFILL_DELAY",))


class WarmPools:
    """The waiting kernels of every pool of one gateway, and their refill loop."""

    def __init__(self, registry: Any, settings: KernelPools, port: int = 0):
        self.registry = registry
        self.record = os.path.join(registry.runtime_dir, f"eg-warm-pool-{port}.json")
        self.settings = settings
        self.waiting: dict[str, list[Any]] = {}
        self.filling: Counter = Counter()
        self.failures: Counter = Counter()
        self.paused_until: dict[str, float] = {}
        self.hits: Counter = Counter()
        self.misses: Counter = Counter()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, settings.refill_concurrency))
        self._launches: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None

    # -- refill ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._drop_leftovers()
        known = self.registry.catalog.available()
        unknown = [name for name in self.settings.pools if name not in known]
        for name in unknown:
            log.warning("warm pool for kernelspec %r ignored: no such kernelspec", name)
        self._loop = asyncio.ensure_future(self._refill_loop())

    async def _drop_leftovers(self) -> None:
        """Remove the waiting kernels an earlier gateway on this port left behind (it was
        killed): load each through its resource manager, then kill and clean it up."""
        try:
            with open(self.record) as f:
                records = json.load(f)
        except (OSError, ValueError):
            return
        for record in records:
            kernel = KernelContext.from_json(record)
            hooks = self.registry.hooks(kernel.resource_manager)
            try:
                if implemented(hooks.eg_load_process_info):
                    await acall_first(hooks.eg_load_process_info, kernel=kernel, info=record.get("state") or {})
                await acall_first(hooks.eg_kill, kernel=kernel, restart=False)
                await cleanup(kernel, hooks, restart=False)
                log.info("warm pool %s: removed kernel %s left waiting by an earlier gateway", kernel.kernel_name, kernel.kernel_id)
            except Exception as exc:
                log.warning("warm pool %s: could not remove kernel %s left by an earlier gateway: %s", kernel.kernel_name, kernel.kernel_id, exc)
        self._save()

    def _save(self) -> None:
        """Rewrite the list of waiting (and binding) kernels; readable by the gateway only."""
        records = [m.kernel.to_json() for m in self.registry.unlisted.values()]
        try:
            fd = os.open(self.record + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(records, f)
            os.replace(self.record + ".tmp", self.record)
        except OSError as exc:
            log.warning("warm pools: cannot write %s: %s", self.record, exc)

    def wake(self) -> None:
        self._wake.set()

    def size(self, name: str) -> int:
        return len(self.waiting.get(name, ()))

    def total(self) -> int:
        return sum(len(w) for w in self.waiting.values()) + sum(self.filling.values())

    async def _refill_loop(self) -> None:
        while True:
            self._wake.clear()
            pause = self._refill()
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except asyncio.TimeoutError:
                pass

    def _refill(self) -> float | None:
        """Start the launches the pools lack; the seconds until a paused pool may retry."""
        now = time.monotonic()
        next_retry = None
        names = self.registry.catalog.available() if self.settings.pools else {}
        for name, wanted in self.settings.pools.items():
            if name not in names:
                continue
            paused = self.paused_until.get(name, 0) - now
            if paused > 0:
                next_retry = paused if next_retry is None else min(next_retry, paused)
                continue
            while self.size(name) + self.filling[name] < wanted and self.total() < self.settings.max_pooled_kernels:
                self.filling[name] += 1
                task = asyncio.ensure_future(self._launch(name))
                self._launches.add(task)
                task.add_done_callback(self._launches.discard)
        return next_retry

    async def _launch(self, name: str) -> None:
        try:
            async with self._slots:
                managed = await self.registry.start_pooled(name, prepare=warm_up)
        except EGError as exc:
            self.failures[name] += 1
            pause = min(2.0 ** self.failures[name], MAX_BACKOFF)
            self.paused_until[name] = time.monotonic() + pause
            log.warning("warm pool %s: a launch failed (%s); retrying in %.0fs", name, exc.message.splitlines()[0], pause)
            return
        finally:
            self.filling[name] -= 1
            self.wake()
        self.failures.pop(name, None)
        self.waiting.setdefault(name, []).append(managed)
        self._save()

    def forget(self, kernel_id: str) -> None:
        """A waiting kernel ended (died, or was shut down): drop it, the loop refills."""
        before = sum(len(w) for w in self.waiting.values())
        for waiting in self.waiting.values():
            waiting[:] = [m for m in waiting if m.kernel_id != kernel_id]
        if sum(len(w) for w in self.waiting.values()) != before:
            self.wake()
            self._save()

    # -- claims ------------------------------------------------------------------------------

    async def claim(self, request: Any) -> Any:
        """A waiting kernel bound to ``request``, or None (a miss, reported as ``pool_miss``)."""
        name = request.kernel_name
        if name not in self.settings.pools:
            return None
        waiting = self.waiting.setdefault(name, [])
        waiting[:] = [m for m in waiting if m.kernel_id in self.registry.unlisted and m.execution_state != "dead"]
        if not waiting:
            managed, reason = None, "the pool is empty (refilling)"
        else:
            managed = waiting.pop(0)  # taken before any await, so concurrent claims never share one
            reason = await misfit(managed.kernel, request, managed.launch.hooks)
            if reason is not None:
                waiting.insert(0, managed)
                managed = None
        if managed is not None:
            asyncio.get_running_loop().call_later(self.settings.refill_delay, self.wake)
            try:
                await bind(managed, request)
            except (BindFailed, asyncio.TimeoutError, EGError) as exc:
                reason = f"binding the request failed: {exc or 'no reply'}"
                asyncio.ensure_future(managed.shutdown(now=True, reason="its warm-pool binding failed"))
                managed = None
        if managed is None:
            self.misses[name] += 1
            request.log.info("warm pool %s: miss, starting a kernel: %s", name, reason)
            await self.registry.emit(request, "pool_miss", {"reason": reason})
            return None
        self.hits[name] += 1
        return managed

    def claimed(self) -> None:
        """A claimed kernel left the waiting list (the core listed it)."""
        self._save()

    async def stop(self) -> None:
        """Stop refilling and shut down every waiting kernel (pools are not kept across a
        gateway restart: they refill in the next one)."""
        if self._loop is not None:
            self._loop.cancel()
        for task in list(self._launches):
            task.cancel()
        await asyncio.gather(*self._launches, return_exceptions=True)
        waiting = [m for pool in self.waiting.values() for m in pool] + list(self.registry.unlisted.values())
        self.waiting.clear()
        unique = {m.kernel_id: m for m in waiting}
        await asyncio.gather(
            *(m.shutdown(now=True, reason="warm pool dropped: the gateway is stopping") for m in unique.values()),
            return_exceptions=True,
        )
        try:
            os.unlink(self.record)
        except OSError:
            pass
