"""The time left of a launch: :class:`Deadline`, which the launch sequence runs each phase in."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class Deadline:
    """The time left of one launch; each phase runs in what remains. A resource manager may
    stop its clock for a wait that has a limit of its own (an image pull) through
    :meth:`eg_core.KernelContext.pause_launch_deadline`: while paused, no time is used up."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.paused_at: float | None = None
        self._changed: asyncio.Future | None = None

    def left(self) -> float:
        now = self.paused_at if self.paused_at is not None else time.monotonic()
        return max(self.end - now, 0.0)

    def pause(self) -> None:
        if self.paused_at is None:
            self.paused_at = time.monotonic()
            self._wake()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.end += time.monotonic() - self.paused_at
            self.paused_at = None
            self._wake()

    def changed(self) -> asyncio.Future:
        """A future done at the next pause or resume."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def run(self, awaitable: Any) -> Any:
        """``awaitable``'s result, or :class:`asyncio.TimeoutError` once no time is left (it is
        then cancelled, as ``asyncio.wait_for`` does); paused time does not count."""
        task = asyncio.ensure_future(awaitable)
        try:
            while not task.done():
                changed = self.changed()
                timeout = None if self.paused_at is not None else self.left()
                if timeout == 0:
                    raise asyncio.TimeoutError
                await asyncio.wait({task, changed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
