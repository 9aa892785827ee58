"""A kernel's heartbeat, pinged over one plain asyncio connection.

The gateway pings every kernel's heartbeat channel every ``Gateway.heartbeat_interval`` seconds;
a ping not echoed by the next one makes the kernel unresponsive until one is echoed again.

Why not a pyzmq socket: each ZMQ socket holds its own mailbox eventfd beside its connection,
and the gateway would hold two files per idle kernel for its heartbeat alone. One ROUTER
socket shared by all kernels cannot reach a REP heartbeat (ZMTP refuses ROUTER to REP), and
IRkernel, among others, echoes through REP. A heartbeat is a one-frame echo, so this module
speaks the small part of ZMTP 3.0 it needs (NULL security, a DEALER peer; libzmq accepts it
with REP and ROUTER heartbeats alike) over an asyncio connection: one file per kernel, one
timer per interval, no task while connected.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Callable

log = logging.getLogger("eg_core._runtime.heartbeat")

MORE, LONG, COMMAND = 0x01, 0x02, 0x04
GREETING_SIZE = 64


def _greeting() -> bytes:
    """ZMTP 3.0 greeting: signature, version 3.0, mechanism NULL, not a server, filler."""
    return b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)


def _frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def _ready() -> bytes:
    """The READY command announcing a DEALER socket."""
    name, value = b"Socket-Type", b"DEALER"
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return _frame(body, COMMAND)


GREETING = _greeting()
READY = _ready()


class _Connection(asyncio.Protocol):
    """One ZMTP connection to a heartbeat socket: handshake, then echoed messages."""

    def __init__(self, on_ready: Callable[[], None], on_message: Callable[[list[bytes]], None], on_lost: Callable[[], None]):
        self.on_ready, self.on_message, self.on_lost = on_ready, on_message, on_lost
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self._buffer = bytearray()
        self._greeted = False
        self._parts: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(GREETING + READY)

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.ready = False
        self.on_lost()

    def send(self, parts: list[bytes]) -> None:
        last = len(parts) - 1
        self.transport.write(b"".join(_frame(p, MORE if i < last else 0) for i, p in enumerate(parts)))

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        if not self._greeted:
            if len(buf) < GREETING_SIZE:
                return
            if buf[0] != 0xFF or buf[9] != 0x7F or buf[10] < 3:
                log.warning("heartbeat peer does not speak ZMTP 3 (greeting %r)", bytes(buf[:11]))
                self.transport.close()
                return
            del buf[:GREETING_SIZE]
            self._greeted = True
        while len(buf) >= 2:
            flags = buf[0]
            head = 9 if flags & LONG else 2
            if len(buf) < head:
                return
            size = struct.unpack_from(">Q", buf, 1)[0] if flags & LONG else buf[1]
            if len(buf) < head + size:
                return
            body = bytes(buf[head:head + size])
            del buf[:head + size]
            if flags & COMMAND:
                self._command(body)
            else:
                self._parts.append(body)
                if not flags & MORE:
                    parts, self._parts = self._parts, []
                    self.on_message(parts)

    def _command(self, body: bytes) -> None:
        name = body[1:1 + body[0]] if body else b""
        if name == b"READY" and not self.ready:
            self.ready = True
            self.on_ready()
        elif name == b"ERROR":
            log.warning("heartbeat peer refused the connection: %r", body[7:].decode(errors="replace"))
            self.transport.close()


class _Clock:
    """One timer per event loop and interval that ticks every heartbeat of that interval: a
    gateway holding hundreds of kernels wakes once per interval to ping them all, and their
    echoes arrive together, instead of two wake-ups per kernel."""

    _clocks: dict[tuple[asyncio.AbstractEventLoop, float], _Clock] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float):
        self.loop, self.interval = loop, interval
        self.beats: dict[Heartbeat, None] = {}
        self._timer = loop.call_later(interval, self._tick)

    @classmethod
    def join(cls, beat: Heartbeat) -> None:
        key = (beat._loop, beat.interval)
        clock = cls._clocks.get(key)
        if clock is None:
            clock = cls._clocks[key] = cls(*key)
        clock.beats[beat] = None

    @classmethod
    def leave(cls, beat: Heartbeat) -> None:
        key = (beat._loop, beat.interval)
        clock = cls._clocks.get(key)
        if clock is not None:
            clock.beats.pop(beat, None)
            if not clock.beats:
                clock._timer.cancel()
                del cls._clocks[key]

    def _tick(self) -> None:
        self._timer = self.loop.call_later(self.interval, self._tick)
        for beat in list(self.beats):
            beat._tick()


class Heartbeat:
    """Pings one kernel's heartbeat every ``interval`` seconds and calls ``on_result(True|False)``
    after each interval: whether the last ping was echoed (the first result comes between half
    an interval and one and a half after ``start``). Connects, and reconnects when the
    connection is lost (a restarted kernel, a network cut), as libzmq would: retried after
    0.1 s, doubling up to the interval; until then pings go unanswered."""

    def __init__(self, transport: str, ip: str, port: int, interval: float, on_result: Callable[[bool], None]):
        self.transport, self.ip, self.port = transport, ip, port
        self.interval = interval
        self.on_result = on_result
        self._loop = asyncio.get_running_loop()
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task | None = None
        self._count = 0
        self._pending: bytes | None = None  # the ping awaiting its echo
        self._sent_at = 0.0
        self._echoed = False
        self._closed = False
        self._delay = 0.1

    def start(self) -> None:
        self._tick()
        _Clock.join(self)

    def close(self) -> None:
        self._closed = True
        _Clock.leave(self)
        if self._connecting is not None:
            self._connecting.cancel()
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.abort()
        self._conn = None

    def _tick(self) -> None:
        """Judge the last ping and send the next; a ping younger than half an interval (one
        sent at ``start``, between the clock's ticks) waits for the next tick."""
        now = self._loop.time()
        if self._pending is not None:
            if now - self._sent_at < self.interval / 2:
                return
            self.on_result(self._echoed)
        self._count += 1
        self._pending, self._echoed, self._sent_at = str(self._count).encode(), False, now
        if self._conn is not None and self._conn.ready:
            self._conn.send([b"", self._pending])
        elif self._conn is None and self._connecting is None:
            self._connecting = self._loop.create_task(self._connect())

    async def _connect(self, wait: float = 0) -> None:
        """Connect after ``wait`` seconds, retrying like libzmq: after 0.1 s, doubling up to the
        interval (the delay goes back to 0.1 s once a connection completes its handshake)."""
        try:
            await asyncio.sleep(wait)
            while not self._closed:
                conn = self._connection()
                try:
                    if self.transport == "ipc":
                        await self._loop.create_unix_connection(lambda: conn, f"{self.ip}-{self.port}")
                    else:
                        await self._loop.create_connection(lambda: conn, self.ip, self.port)
                except OSError:  # not listening (yet)
                    conn.transport = None
                if conn.transport is not None:
                    self._conn = conn
                    return
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self.interval)
        finally:
            self._connecting = None

    def _connection(self) -> _Connection:
        conn = _Connection(lambda: self._on_ready(conn), self._on_message, lambda: self._on_lost(conn))
        return conn

    def _on_ready(self, conn: _Connection) -> None:
        self._delay = 0.1
        if self._pending is not None and not self._echoed:
            conn.send([b"", self._pending])

    def _on_message(self, parts: list[bytes]) -> None:
        if parts and parts[-1] == self._pending:
            self._echoed = True

    def _on_lost(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None
            if not self._closed and self._connecting is None:
                self._connecting = self._loop.create_task(self._connect(self._delay))
                self._delay = min(self._delay * 2, self.interval)
