"""One batched status query for every watched kernel of a backend that has no events.

Some backends can only be asked (``squeue``, a REST list of tasks or applications). Rather than
one polling loop per kernel, a resource manager keeps one :class:`StatusPoller` per backend: it
asks about every watched kernel in one query per interval, and only while some kernel is
watched::

    def job_states(job_ids):            # async: {job_id: "RUNNING", ...}; absent ids are gone
        ...

    jobs = StatusPoller(job_states, interval=2.0, name="slurm")

    @hookimpl
    async def eg_wait(kernel):
        state = await jobs.wait_until(kernel.state["job_id"], lambda s: s not in ALIVE)
        return 0 if state in (None, "COMPLETED") else 1

Keep the poller with :meth:`StatusPoller.shared` (``StatusPoller.shared(key, job_states,
interval=2.0, name="slurm")``): one per backend ``key`` (an address, a settings value) and event
loop, made on first use, so every kernel of that backend is asked about in the same query.

With ``start`` the poller backs off: it asks again after ``start`` seconds, then doubles the
wait up to ``interval``; :meth:`StatusPoller.wake` (call it when a kill or a shutdown request
was just sent) asks at once and starts the backoff over.

A failed query is logged and asked again after the next wait (a backend that is briefly
unreachable says nothing about the kernels). Waiters may be cancelled at any time.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Awaitable, Callable, Hashable, Mapping

log = logging.getLogger("eg.poller")
Query = Callable[[list[str]], Awaitable[Mapping[str, Any]]]
_shared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {key: poller}


class StatusPoller:
    """Watches keys (job ids, service ids...) with ``query(keys) -> {key: status}``."""

    def __init__(self, query: Query, interval: float, name: str = "backend", *, start: float | None = None):
        self.query = query
        self.interval = interval
        self.name = name
        self.start = min(start or interval, interval)  # the first wait after a wake
        self._delay = self.start
        self._woken = asyncio.Event()
        self.latest: dict[str, Any] = {}  # the last status seen per watched key
        self._waiters: dict[str, list[tuple[Callable[[Any], bool], asyncio.Future]]] = {}
        self._task: asyncio.Task | None = None
        self.queries = 0  # queries made so far (for tests and benchmarks)

    @classmethod
    def shared(cls, key: Hashable, query: Query, interval: float, name: str = "backend", *,
               start: float | None = None) -> "StatusPoller":
        """The poller of backend ``key`` on the running event loop; made from ``query``,
        ``interval``, ``name`` and ``start`` the first time ``key`` is asked for (later calls
        get that one)."""
        pollers = _shared.setdefault(asyncio.get_running_loop(), {})
        if key not in pollers:
            pollers[key] = cls(query, interval, name, start=start)
        return pollers[key]

    def wake(self) -> None:
        """Ask at once (if some key is watched), then back off again from ``start``."""
        self._delay = self.start
        self._woken.set()

    async def wait_until(self, key: str, done: Callable[[Any], bool]) -> Any:
        """Wait until ``done(status)`` holds for ``key``'s status (``None`` once the query no
        longer lists it) and return that status."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append((done, future))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        try:
            return await asyncio.shield(future)
        finally:
            waiters = self._waiters.get(key, [])
            if (done, future) in waiters:
                waiters.remove((done, future))
            if not waiters:
                self._waiters.pop(key, None)
                self.latest.pop(key, None)
                if not self._waiters:
                    self._woken.set()  # nothing left to watch: the loop ends now, not after its wait

    async def _run(self) -> None:
        while self._waiters:
            keys = list(self._waiters)
            try:
                statuses = dict(await self.query(keys))
            except Exception as exc:
                log.warning("%s: status query failed (%s); asking again in %gs", self.name, exc, self._delay)
            else:
                self.queries += 1
                for key in keys:
                    status = statuses.get(key)
                    self.latest[key] = status
                    for done, future in list(self._waiters.get(key, ())):
                        if not future.done() and done(status):
                            future.set_result(status)
            await self._pause()
        self._task = None

    async def _pause(self) -> None:
        delay, self._delay = self._delay, min(self._delay * 2, self.interval)
        if not self._woken.is_set():
            try:
                await asyncio.wait_for(self._woken.wait(), delay)
            except asyncio.TimeoutError:
                pass
        self._woken.clear()


__all__ = ["StatusPoller"]
