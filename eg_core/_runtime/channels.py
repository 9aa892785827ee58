"""The ZMQ side of the websocket bridge.

Per kernel, one iopub SUB socket feeds every client (and the kernel's activity tracking); with
the heartbeat's connection (:mod:`eg_core._runtime.heartbeat`) it is all an idle kernel without clients
holds (its exit comes from the resource manager's ``eg_wait``). The gateway's own shell requests (the ``kernel_info`` probe, a warm pool's
binding) open a shell socket for their duration only. Per
client session (``session_id``), one identity shares shell, control and stdin DEALER sockets, so
replies and input requests reach the session that asked. A session whose websocket closed is
*parked*: its sockets stay open and what arrives is buffered until a websocket with the same
``session_id`` comes back (then replayed) or another session connects (then dropped).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from hashlib import sha256
from typing import Any, Callable, Protocol

import zmq
import zmq.asyncio

from .heartbeat import Heartbeat

DELIM = b"<IDS|MSG>"
SESSION_CHANNELS = ("shell", "control", "stdin")
MAX_BUFFER_BYTES = 64 * 1024 * 1024
ZERO_COPY_SIZE = 64 * 1024
log = logging.getLogger("eg.channels")


class RelayCounts:
    """Messages relayed by every bridge of this process, for metrics."""

    from_kernel = 0
    to_kernel = 0


class Client(Protocol):
    """A websocket (or anything) that takes kernel messages for one session."""

    def deliver(self, channel: str, parts: list[bytes], header: dict[str, Any] | None) -> None: ...

    def end(self, reason: str) -> None: ...


def _split(frames: list[bytes]) -> list[bytes] | None:
    """The message parts after the delimiter and signature: header, parent, metadata, content, buffers."""
    try:
        i = frames.index(DELIM)
    except ValueError:
        return None
    parts = frames[i + 2 :]
    return parts if len(parts) >= 4 else None


class Signer:
    def __init__(self, key: bytes, scheme: str = "hmac-sha256"):
        if scheme not in ("hmac-sha256", ""):
            raise ValueError(f"unsupported signature scheme {scheme!r}")
        self._hmac = hmac.new(key, digestmod=sha256) if key else None

    def frames(self, parts: list[bytes]) -> list[bytes]:
        """The wire frames of a message: delimiter, signature, then the parts."""
        if self._hmac is None:
            return [DELIM, b"", *parts]
        h = self._hmac.copy()
        for part in parts[:4]:
            h.update(part)
        return [DELIM, h.hexdigest().encode(), *parts]


def status_parts(session: str, state: str) -> list[bytes]:
    """An iopub ``status`` message the gateway itself sends (restarting, dead)."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "status",
        "username": "eg",
        "session": session,
        "date": datetime.now(timezone.utc).isoformat(),
        "version": "5.3",
    }
    return [json.dumps(header).encode(), b"{}", b"{}", json.dumps({"execution_state": state}).encode()]


def notice_parts(session: str, parent: bytes, text: str) -> list[bytes]:
    """An iopub ``stream`` message (stderr) from the gateway itself, in reply to ``parent``."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "stream",
        "username": "eg",
        "session": session,
        "date": datetime.now(timezone.utc).isoformat(),
        "version": "5.3",
    }
    return [json.dumps(header).encode(), bytes(parent), b"{}", json.dumps({"name": "stderr", "text": text}).encode()]


class SessionChannels:
    """One client session: its sockets, its websocket (or none), its buffer while parked."""

    def __init__(self, bridge: "KernelBridge", session_id: str):
        self.bridge = bridge
        self.session_id = session_id
        self.client: Client | None = None
        self.buffer: list[tuple[str, list[bytes], dict | None]] = []
        self.buffered_bytes = 0
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        self.tasks: list[asyncio.Task] = []
        self.open_sockets()

    def open_sockets(self) -> None:
        identity = f"{self.session_id}-{uuid.uuid4().hex[:8]}".encode()
        for channel in SESSION_CHANNELS:
            sock = self.bridge.socket(channel, zmq.DEALER, identity)
            self.sockets[channel] = sock
            self.tasks.append(asyncio.ensure_future(self._relay(channel, sock)))

    def close_sockets(self) -> None:
        for task in self.tasks:
            task.cancel()
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.tasks, self.sockets = [], {}

    async def _relay(self, channel: str, sock: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frames = await sock.recv_multipart()
            except (asyncio.CancelledError, zmq.ZMQError):
                return
            parts = _split(frames)
            if parts is not None:
                RelayCounts.from_kernel += 1
                self.bridge.touch()
                self.deliver(channel, parts, None)

    def deliver(self, channel: str, parts: list[bytes], header: dict | None) -> None:
        if self.client is not None:
            self.client.deliver(channel, parts, header)
        elif self.buffered_bytes < MAX_BUFFER_BYTES:
            self.buffer.append((channel, parts, header))
            self.buffered_bytes += sum(len(p) for p in parts)

    def send(self, channel: str, parts: list[bytes]) -> None:
        sock = self.sockets.get(channel)
        if sock is None:
            raise KeyError(channel)
        frames = self.bridge.signer.frames(parts)
        # Large parts (a long cell, buffers) go to ZMQ without a copy.
        sock.send_multipart(frames, copy=sum(len(f) for f in frames) < ZERO_COPY_SIZE)
        RelayCounts.to_kernel += 1

    def replay(self) -> None:
        buffered, self.buffer, self.buffered_bytes = self.buffer, [], 0
        for channel, parts, header in buffered:
            self.client.deliver(channel, parts, header)


class KernelBridge:
    """The ZMQ connections of one kernel, shared by its websocket clients."""

    def __init__(
        self, kernel_id: str, context: zmq.asyncio.Context, on_status: Callable[[str], None], buffer_offline: bool = True,
        heartbeat_interval: float = 0.0,
    ):
        self.kernel_id = kernel_id
        self.heartbeat_interval = heartbeat_interval
        self.responsive = True  # False while the kernel does not echo its heartbeat
        self.context = context
        self.on_status = on_status
        self.buffer_offline = buffer_offline
        self.sessions: dict[str, SessionChannels] = {}
        self.parked: SessionChannels | None = None
        self.info: dict[str, Any] = {}
        self.signer = Signer(b"")
        self.last_activity = time.time()
        self.status_parent = b"{}"  # the request behind the kernel's last status (its running cell, when busy)
        self._iopub: zmq.asyncio.Socket | None = None
        self._probe: zmq.asyncio.Socket | None = None
        self._probe_task: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self._heartbeat: Heartbeat | None = None
        self._iopub_seen = asyncio.Event()
        self._replies: dict[str, asyncio.Future] = {}

    # -- sockets -----------------------------------------------------------------------------

    def socket(self, channel: str, kind: int, identity: bytes | None = None) -> zmq.asyncio.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        if identity:
            sock.identity = identity
        if kind == zmq.SUB:
            sock.subscribe(b"")
        info = self.info
        sep = "-" if info.get("transport") == "ipc" else ":"
        sock.connect(f"{info.get('transport', 'tcp')}://{info['ip']}{sep}{info[channel + '_port']}")
        return sock

    def connect(self, info: dict[str, Any]) -> None:
        """Open the kernel-level socket (iopub) to ``info``."""
        self.info = dict(info)
        key = info.get("key") or b""
        self.signer = Signer(key.encode() if isinstance(key, str) else key, info.get("signature_scheme", "hmac-sha256"))
        self._iopub = self.socket("iopub", zmq.SUB)
        self._tasks = [asyncio.ensure_future(self._read_iopub())]
        if self.heartbeat_interval > 0 and info.get("hb_port"):
            self._heartbeat = Heartbeat(info.get("transport", "tcp"), info["ip"], info["hb_port"], self.heartbeat_interval, self._heard)
            self._heartbeat.start()

    def _heard(self, responsive: bool) -> None:
        if responsive != self.responsive:
            self.responsive = responsive
            if responsive:
                log.info("[kernel %s] answers its heartbeat again", self.kernel_id)
            else:
                log.warning("[kernel %s] does not answer its heartbeat within %gs: unresponsive", self.kernel_id, self.heartbeat_interval)

    def reconnect(self, info: dict[str, Any]) -> None:
        """After a restart: reopen every socket if the kernel's address changed."""
        same = all(info.get(k) == self.info.get(k) for k in ("ip", "transport", "shell_port", "iopub_port", "stdin_port", "control_port", "key"))
        if same:
            return
        self._close_kernel_sockets()
        self.connect(info)
        for session in self._all_sessions():
            session.close_sockets()
            session.open_sockets()

    def _close_kernel_sockets(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._heartbeat is not None:
            self._heartbeat.close()
            self._heartbeat = None
        if self._iopub is not None:
            self._iopub.close(linger=0)
        self._iopub = None
        self._tasks = []
        self.responsive = True
        for future in self._replies.values():
            future.cancel()
        self._replies.clear()
        self._close_probe()

    def close(self, reason: str = "the kernel was shut down") -> None:
        """Close every socket and end the websockets (their close frame carries ``reason``)."""
        self._close_kernel_sockets()
        for session in self._all_sessions():
            session.close_sockets()
            if session.client is not None:
                session.client.end(reason)
        self.sessions.clear()
        self.parked = None

    def _all_sessions(self) -> list[SessionChannels]:
        return list(self.sessions.values()) + ([self.parked] if self.parked else [])

    # -- kernel-level reading ------------------------------------------------------------------

    def touch(self) -> None:
        self.last_activity = time.time()

    async def _read_iopub(self) -> None:
        sock = self._iopub
        while True:
            try:
                received = await sock.recv_multipart(copy=False)
                # Output can be megabytes: large parts stay views of the received frames and
                # reach the websockets without a copy.
                frames = [f.bytes if len(f) < ZERO_COPY_SIZE else f.buffer for f in received]
            except (asyncio.CancelledError, zmq.ZMQError):
                return
            parts = _split(frames)
            if parts is None:
                continue
            RelayCounts.from_kernel += 1
            self._iopub_seen.set()
            self.touch()
            header = None
            if b'"status"' in parts[0]:  # parse only headers that may be status messages
                try:
                    header = json.loads(parts[0])
                    if header.get("msg_type") == "status":
                        self.status_parent = parts[1]
                        self.on_status(json.loads(parts[3]).get("execution_state", ""))
                except (ValueError, AttributeError):
                    continue
            self.publish(parts, header)

    def publish(self, parts: list[bytes], header: dict | None) -> None:
        """Send an iopub message to every session (buffered for a parked one)."""
        for session in self.sessions.values():
            session.deliver("iopub", parts, header)
        if self.parked is not None:
            self.parked.deliver("iopub", parts, header)

    def _open_probe(self) -> zmq.asyncio.Socket:
        if self._probe is None:
            self._probe = self.socket("shell", zmq.DEALER)
            self._probe_task = asyncio.ensure_future(self._read_probe(self._probe))
        return self._probe

    def _close_probe(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self._probe is not None:
            self._probe.close(linger=0)
        self._probe = self._probe_task = None

    async def _read_probe(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frames = await sock.recv_multipart()
            except (asyncio.CancelledError, zmq.ZMQError):
                return
            parts = _split(frames)
            if parts is None:
                continue
            try:
                parent = json.loads(parts[1])
            except ValueError:
                continue
            future = self._replies.pop(parent.get("msg_id", ""), None)
            if future is not None and not future.done():
                future.set_result(json.loads(bytes(parts[3])))

    def _send_probe(self, msg_type: str, content: dict[str, Any] | None = None) -> asyncio.Future:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "eg",
            "session": f"eg-{self.kernel_id}",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        future = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = future
        body = json.dumps(content or {}).encode()
        self._open_probe().send_multipart(self.signer.frames([json.dumps(header).encode(), b"{}", b"{}", body]))
        return future

    async def request(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        """Send a shell request from the gateway itself (not from a client) and return the
        reply's content; bounded by the caller's timeout. The shell socket it needs is open only
        while a request waits."""
        future = self._send_probe(msg_type, content)
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()
            self._replies = {k: f for k, f in self._replies.items() if not f.done()}
            if not self._replies:
                self._close_probe()

    async def wait_ready(self) -> dict[str, Any]:
        """Wait until the kernel answers ``kernel_info`` on shell and iopub messages flow to us
        (the iopub subscription is live). Bounded by the caller's timeout."""
        self._iopub_seen.clear()
        try:
            reply = await self._send_probe("kernel_info_request")
            nudge_interval = 0.05
            while not self._iopub_seen.is_set():
                self._send_probe("kernel_info_request")
                try:
                    await asyncio.wait_for(self._iopub_seen.wait(), nudge_interval)
                except asyncio.TimeoutError:
                    nudge_interval = min(nudge_interval * 2, 1.0)
            return reply
        finally:
            for future in self._replies.values():
                future.cancel()
            self._replies.clear()
            self._close_probe()

    # -- client sessions -----------------------------------------------------------------------

    def attach(self, session_id: str, client: Client) -> SessionChannels:
        """Connect ``client`` as session ``session_id``: reuse a parked session of that id
        (replaying its buffer) or replace a live websocket of that id (closing the stale one)."""
        session = self.sessions.get(session_id)
        if session is not None:
            stale = session.client
            session.client = client
            if stale is not None and stale is not client:
                log.debug("[kernel %s] session %s reconnected; closing its stale websocket", self.kernel_id, session_id)
                stale.end("replaced by a newer connection with the same session_id")
            return session
        if self.parked is not None and self.parked.session_id == session_id:
            session, self.parked = self.parked, None
            self.sessions[session_id] = session
            session.client = client
            session.replay()
            return session
        if self.parked is not None:
            self.parked.close_sockets()
            self.parked = None
        session = SessionChannels(self, session_id)
        session.client = client
        self.sessions[session_id] = session
        return session

    def detach(self, session_id: str, client: Client) -> None:
        """The websocket of a session closed: park the session (buffering) or close it."""
        session = self.sessions.get(session_id)
        if session is None or session.client is not client:
            return
        del self.sessions[session_id]
        session.client = None
        if not self.buffer_offline:
            session.close_sockets()
            return
        if self.parked is not None:
            self.parked.close_sockets()
        self.parked = session

    @property
    def connections(self) -> int:
        return len(self.sessions)
