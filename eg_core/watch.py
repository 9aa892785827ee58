"""One watch on a backend, shared by every kernel: what a resource manager uses instead of
polling, or instead of one long-poll per kernel.

A backend that can stream changes (Kubernetes watches, the Docker engine's event stream) is
watched once per gateway process; each kernel's ``eg_confirm_startup`` and ``eg_wait`` wait on
that one stream for their own key (a kernel id)::

    async def feed():                                   # how the backend is read
        yield Snapshot({kid: pod for kid, pod in await list_pods()})
        async for kid, pod in watch_pods():             # deleted objects: value None
            yield Change(kid, pod)

    pods = SharedWatch("kubernetes pods", feed)         # one per process (or per namespace)

    @hookimpl
    async def eg_wait(kernel):
        return await pods.wait(kernel.kernel_id, lambda pod: exit_status(pod))

The feed starts on first use and runs in one task. When it ends or fails, the watch waits
(backing off up to ``max_backoff``) and calls ``feed()`` again, which must start with a fresh
:class:`Snapshot`; waiters see the snapshot's value, so nothing that changed meanwhile is missed.
A waiter's ``decide`` function is called with the key's current value (``None``: no such
object) and again on every change; its first result other than ``None`` is what ``wait``
returns, and an exception it raises is raised by ``wait``. ``watch(key, callback)`` calls a
function on every change of a key (progress reporting).

Blocking SDKs (the ``kubernetes`` and ``docker`` packages) feed it through
:func:`iterate_in_thread`, which runs a blocking iterator in its own thread and yields its items
on the event loop, so a long-lived stream never occupies the loop or the default executor.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Hashable, Iterable, Iterator

log = logging.getLogger("eg.watch")

_END = object()


@dataclass
class Snapshot:
    """Every object the backend holds now, by key; keys not in it are gone."""

    objects: dict[Hashable, Any]


@dataclass
class Change:
    """One object changed; ``value`` None means it was deleted."""

    key: Hashable
    value: Any


Decide = Callable[[Any], Any]


class _Waiter:
    __slots__ = ("decide", "future")

    def __init__(self, decide: Decide, future: asyncio.Future):
        self.decide = decide
        self.future = future

    def offer(self, value: Any) -> None:
        if self.future.done():
            return
        try:
            result = self.decide(value)
        except BaseException as exc:  # the waiter's own verdict: hand it to its caller
            self.future.set_exception(exc)
            return
        if result is not None:
            self.future.set_result(result)


class SharedWatch:
    """The latest value of every key of one backend stream, and waiters on them.

    ``feed`` is a function returning an async iterator of :class:`Snapshot` and :class:`Change`
    items, the first being a :class:`Snapshot`. ``name`` appears in log lines.
    """

    def __init__(self, name: str, feed: Callable[[], AsyncIterator[Snapshot | Change]], *, max_backoff: float = 10.0):
        self.name = name
        self._feed = feed
        self._max_backoff = max_backoff
        self._values: dict[Hashable, Any] = {}
        self._waiters: dict[Hashable, list[_Waiter]] = {}
        self._callbacks: dict[Hashable, list[Callable[[Any], None]]] = {}
        self._task: asyncio.Task | None = None
        self._synced: asyncio.Event | None = None
        self.connected = False  # whether the feed is live now (after its snapshot)

    # -- reading -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the feed task (idempotent; ``wait`` and ``watch`` call it)."""
        if self._task is None or self._task.done():
            self._synced = self._synced or asyncio.Event()
            self._task = asyncio.ensure_future(self._run())

    async def synced(self) -> None:
        """Return once the first snapshot has been read."""
        self.start()
        assert self._synced is not None
        await self._synced.wait()

    def get(self, key: Hashable) -> Any:
        """The key's latest value (None if unknown or gone)."""
        return self._values.get(key)

    def values(self) -> dict[Hashable, Any]:
        return dict(self._values)

    async def wait(self, key: Hashable, decide: Decide) -> Any:
        """Wait until ``decide(value)`` returns something other than None, and return it.

        ``decide`` gets the current value once the watch has synced, then every new value of
        ``key`` (None when the object is deleted). Cancel the call (or wrap it in
        ``asyncio.wait_for``) to stop waiting.
        """
        await self.synced()
        waiter = _Waiter(decide, asyncio.get_running_loop().create_future())
        waiter.offer(self._values.get(key))
        if waiter.future.done():
            return waiter.future.result()
        self._waiters.setdefault(key, []).append(waiter)
        try:
            return await waiter.future
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def watch(self, key: Hashable, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(value)`` on every change of ``key``; returns the function that stops it."""
        self.start()
        self._callbacks.setdefault(key, []).append(callback)

        def stop() -> None:
            callbacks = self._callbacks.get(key)
            if callbacks and callback in callbacks:
                callbacks.remove(callback)
                if not callbacks:
                    del self._callbacks[key]

        return stop

    async def close(self) -> None:
        """Stop the feed; pending waiters are cancelled."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                waiter.future.cancel()
        self._waiters.clear()
        self._callbacks.clear()
        self.connected = False

    # -- the feed ----------------------------------------------------------------------------

    def _set(self, key: Hashable, value: Any) -> None:
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value
        for waiter in list(self._waiters.get(key, ())):
            waiter.offer(value)
        for callback in list(self._callbacks.get(key, ())):
            try:
                callback(value)
            except Exception:
                log.exception("%s: a change callback for %s failed", self.name, key)

    def _apply(self, item: Snapshot | Change) -> None:
        if isinstance(item, Snapshot):
            gone = set(self._values) - set(item.objects)
            for key in gone:
                self._set(key, None)
            for key, value in item.objects.items():
                self._set(key, value)
            self.connected = True
            assert self._synced is not None
            self._synced.set()
        else:
            self._set(item.key, item.value)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                first = True
                async for item in self._feed():
                    if first and not isinstance(item, Snapshot):
                        raise RuntimeError("a feed must start with a Snapshot")
                    first = False
                    self._apply(item)
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: the watch failed (%s); reconnecting in %.1fs", self.name, exc, backoff)
            else:
                log.debug("%s: the watch ended; reconnecting", self.name)
                backoff = min(backoff, 0.5)
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)


async def iterate_in_thread(open_iterator: Callable[[], Iterable[Any] | Iterator[Any]], *, name: str = "eg-watch",
                            close: Callable[[], None] | None = None) -> AsyncIterator[Any]:
    """Yield the items of a blocking iterator, read in a thread of its own.

    ``open_iterator`` is called in that thread (so connecting blocks only it). ``close`` is
    called when the consumer stops early, to unblock the thread (e.g. close the HTTP response),
    in a thread of its own (closing may block until the read does); the threads are daemons, so
    one blocked in a read never holds up the process's exit.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stopping = threading.Event()

    def put(item: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for item in open_iterator():
                if stopping.is_set():
                    return
                put(item)
            put(_END)
        except BaseException as exc:  # handed to the consumer
            put(exc if not stopping.is_set() else _END)

    thread = threading.Thread(target=read, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopping.set()
        if close is not None and thread.is_alive():
            # Closing a stream may wait for the read blocked in it (a buffered reader's lock)
            # until the backend sends or ends: never on the loop.
            threading.Thread(target=_close_quietly, args=(close,), name=f"{name}-close", daemon=True).start()


def _close_quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:
        pass


__all__ = ["SharedWatch", "Snapshot", "Change", "iterate_in_thread"]
