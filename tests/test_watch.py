"""eg_core.watch: one shared stream feeding many waiters (real asyncio, a scripted backend)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from eg_core.watch import Change, SharedWatch, Snapshot, iterate_in_thread


class Backend:
    """A backend whose feed yields what the test pushes; counts how often it was (re)opened."""

    def __init__(self, objects=None):
        self.objects = dict(objects or {})
        self.queue: asyncio.Queue = asyncio.Queue()
        self.opened = 0

    async def feed(self):
        self.opened += 1
        yield Snapshot(dict(self.objects))
        while True:
            item = await self.queue.get()
            if isinstance(item, Exception):
                raise item
            key, value = item
            if value is None:
                self.objects.pop(key, None)
            else:
                self.objects[key] = value
            yield Change(key, value)


async def test_many_waiters_one_feed():
    backend = Backend({"a": "pending"})
    watch = SharedWatch("test", backend.feed)
    waiters = [asyncio.ensure_future(watch.wait(k, lambda v: v if v == "running" else None)) for k in ("a", "b", "c")]
    await watch.synced()
    for key in ("a", "b", "c"):
        backend.queue.put_nowait((key, "running"))
    assert await asyncio.wait_for(asyncio.gather(*waiters), 10) == ["running"] * 3
    assert backend.opened == 1
    await watch.close()


async def test_current_value_decides_at_once_and_errors_propagate():
    backend = Backend({"a": "done"})
    watch = SharedWatch("test", backend.feed)
    assert await asyncio.wait_for(watch.wait("a", lambda v: v), 10) == "done"

    def fail(value):
        if value == "broken":
            raise ValueError("it broke")

    waiter = asyncio.ensure_future(watch.wait("a", fail))
    backend.queue.put_nowait(("a", "broken"))
    with pytest.raises(ValueError, match="it broke"):
        await asyncio.wait_for(waiter, 10)
    await watch.close()


async def test_deletion_is_none_and_feed_failure_resyncs():
    backend = Backend({"a": "running"})
    watch = SharedWatch("test", backend.feed)
    await watch.synced()
    gone = asyncio.ensure_future(watch.wait("a", lambda v: "gone" if v is None else None))
    # The stream breaks; meanwhile the object is deleted: the resync's snapshot tells the waiter.
    backend.objects.pop("a")
    backend.queue.put_nowait(RuntimeError("connection reset"))
    assert await asyncio.wait_for(gone, 20) == "gone"
    assert backend.opened == 2
    await watch.close()


async def test_callbacks_see_every_change():
    backend = Backend()
    watch = SharedWatch("test", backend.feed)
    seen = []
    stop = watch.watch("k", seen.append)
    await watch.synced()
    backend.queue.put_nowait(("k", 1))
    backend.queue.put_nowait(("k", 2))
    await asyncio.wait_for(watch.wait("k", lambda v: v if v == 2 else None), 10)
    stop()
    backend.queue.put_nowait(("k", 3))
    await asyncio.wait_for(watch.wait("k", lambda v: v if v == 3 else None), 10)
    assert seen == [1, 2]
    await watch.close()


async def test_iterate_in_thread_reads_off_the_loop_and_closes():
    release = threading.Event()
    closed = threading.Event()
    loop_thread = threading.get_ident()
    threads = []

    def blocking():
        threads.append(threading.get_ident())
        yield 1
        release.wait(10)  # a blocking read
        yield 2

    items = []
    async for item in iterate_in_thread(blocking):
        items.append(item)
        if item == 1:
            release.set()
    assert items == [1, 2] and threads[0] != loop_thread

    def endless():
        yield "first"
        closed.wait(60)
        yield "never seen"

    closers = []

    def close():  # as closing a buffered HTTP response does: it waits for the blocked read
        closers.append(threading.get_ident())
        release_close.wait(60)
        closed.set()

    release_close = threading.Event()
    stream = iterate_in_thread(endless, close=close)
    assert await stream.__anext__() == "first"
    await stream.aclose()  # returns while close() still blocks
    release_close.set()
    assert await asyncio.to_thread(closed.wait, 60)
    assert closers and closers[0] != loop_thread


async def test_iterate_in_thread_raises_the_readers_error():
    def broken():
        yield 1
        raise OSError("reset by peer")

    with pytest.raises(OSError, match="reset by peer"):
        async for _ in iterate_in_thread(broken):
            pass
