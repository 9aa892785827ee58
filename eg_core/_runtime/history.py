"""Each kernel's recent lifecycle events, for ``GET /api/kernels/{id}/events``.

The registry's ``emit`` adds every event here (as :func:`eg_core.lifecycle.event_record`, the
kernel's environment kept out): the last :data:`PER_KERNEL` per kernel, and the events of the
last :data:`KERNELS` kernels, so a kernel's history outlives it a while (as the recently-ended
404 reasons do). A follower waits on an :class:`asyncio.Condition` that each event notifies: no
polling, and one that asked before the kernel was requested (an id chosen with ``KERNEL_ID``)
sees its events from the first.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, AsyncIterator

from ..lifecycle import Event, event_record

PER_KERNEL = 200
KERNELS = 1000
# While a kernel's latest event is one of these, a launch (or restart) of it is under way.
LAUNCHING = frozenset((Event.REQUESTED, Event.PROGRESS))


class KernelHistory:
    """One kernel's events (its owner from the first event that named one)."""

    def __init__(self) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=PER_KERNEL)
        self.count = 0  # events ever added (a follower's position survives the deque's trimming)
        self.owner: str | None = None  # None until an event arrived

    def since(self, position: int) -> list[dict[str, Any]]:
        """The events added after the first ``position`` that are still held."""
        missed = self.count - position
        return list(self.events)[-missed:] if missed > 0 else []


class EventHistory:
    """The recent events of every kernel of this gateway."""

    def __init__(self) -> None:
        self.kernels: collections.OrderedDict[str, KernelHistory] = collections.OrderedDict()
        self.changed = asyncio.Condition()

    def get(self, kernel_id: str) -> KernelHistory | None:
        return self.kernels.get(kernel_id)

    async def add(self, kernel: Any, event: str, details: dict[str, Any]) -> None:
        """Record one event of ``kernel`` (a KernelContext) and wake every follower."""
        if kernel.pooled:  # a warm pool's kernel belongs to nobody yet: its own events stay out
            return
        history = self.kernels.get(kernel.kernel_id)
        if history is None:
            history = self.kernels[kernel.kernel_id] = KernelHistory()
            while len(self.kernels) > KERNELS:
                self.kernels.popitem(last=False)
        history.owner = kernel.owner
        history.events.append(event_record(kernel, event, details))
        history.count += 1
        async with self.changed:
            self.changed.notify_all()

    async def follow(self, kernel_id: str, visible: Any) -> AsyncIterator[dict[str, Any]]:
        """Yield the kernel's events, those held and then each as it comes, until no launch of
        it is under way (its latest event is not in :data:`LAUNCHING`: it runs, failed, or
        ended). ``visible(owner)`` says whether the follower may see a kernel of ``owner``:
        until the kernel exists with such an owner, the follower waits."""
        position = seen = 0
        while True:
            history = self.kernels.get(kernel_id)
            if history is not None:
                seen = history.count
                if history.owner is not None and visible(history.owner):
                    batch = history.since(position)
                    position = history.count
                    for record in batch:
                        yield record
                    if batch and batch[-1]["event"] not in LAUNCHING:
                        return
            async with self.changed:
                current = self.kernels.get(kernel_id)
                if current is history and (current is None or current.count == seen):
                    await self.changed.wait()
