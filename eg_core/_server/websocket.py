"""``/api/kernels/{id}/channels``: websocket clients bridged to a kernel's ZMQ channels."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import uuid
from typing import Any

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .handlers import AuthMixin, JSONErrorsMixin
from .._runtime.channels import notice_parts
from .wsproto import V1, ProtocolError, from_legacy, from_v1, legacy_pieces, v1_pieces

log = logging.getLogger("eg.websocket")
LARGE_MESSAGE = 256 * 1024  # bytes; smaller messages go out through tornado as one payload
CLIENT_CHANNELS = frozenset(("shell", "control", "stdin"))


class Backlog:
    """What one websocket client has not read yet, bounded (``Gateway.ws_client_buffer_size``).

    Policy, like Jupyter Server's iopub rate limits: while more than ``limit`` bytes wait to be
    sent to the client, its iopub output (everything but ``status`` messages) is dropped; once
    it has caught up, the client gets a stderr ``stream`` message saying how much was dropped.
    Replies and ``status`` messages are always sent; if those sent while over the limit add up
    to more than ``CLOSE_FACTOR`` times the limit, the client is disconnected (close code 1013),
    its session parked as for any disconnection. Other clients of the kernel are not affected.
    """

    CLOSE_FACTOR = 4

    def __init__(self, limit: int):
        self.limit = limit
        self.pending = 0
        self.kept = 0  # bytes of replies and status messages sent while over the limit
        self.dropped = 0
        self.dropped_bytes = 0
        self.dropped_parent = b"{}"

    def verdict(self, channel: str, parts: list[bytes], header: dict | None, size: int) -> str:
        """``send``, ``drop`` or ``close`` for one message of ``size`` bytes."""
        if self.pending <= self.limit:
            self.kept = 0
            return "send"
        if channel == "iopub" and (header is None or header.get("msg_type") != "status"):
            self.dropped += 1
            self.dropped_bytes += size
            self.dropped_parent = parts[1]
            return "drop"
        self.kept += size
        return "close" if self.kept > self.CLOSE_FACTOR * self.limit else "send"

    def caught_up(self) -> str | None:
        """The notice to send once the client has read enough after drops, else None."""
        if not self.dropped or self.pending > self.limit // 2:
            return None
        text = (
            f"[eg] {self.dropped} output message(s) ({self.dropped_bytes / 1048576:.1f} MiB) were not sent to this "
            f"client: it read more slowly than the kernel wrote (more than {self.limit} bytes were waiting).\n"
        )
        self.dropped = self.dropped_bytes = 0
        return text


class ChannelsHandler(JSONErrorsMixin, AuthMixin, WebSocketHandler):
    """One websocket client of a kernel, in the legacy JSON or the v1 binary protocol."""

    session = None

    async def prepare(self) -> None:
        await self.authenticate()
        self.managed = await self.gateway.kernels.lookup(self.path_kwargs["kernel_id"], self.viewer)

    def check_origin(self, origin: str) -> bool:
        return self.origin_allowed(origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return V1 if V1 in subprotocols else None

    def get_compression_options(self) -> None:
        return None

    def open(self, kernel_id: str) -> None:
        self.v1 = self.selected_subprotocol == V1
        self.session_id = self.get_query_argument("session_id", "") or uuid.uuid4().hex
        self.set_nodelay(True)
        self.backlog = Backlog(self.gateway.ws_client_buffer_size)
        self.session = self.managed.bridge.attach(self.session_id, self)
        self._event("connected")
        log.debug("[kernel %s] websocket open, session %s, protocol %s", kernel_id, self.session_id, V1 if self.v1 else "legacy")

    def on_message(self, message: str | bytes) -> "asyncio.Future | None":
        if len(message) < LARGE_MESSAGE:
            self._relay(message)
            return None
        return asyncio.ensure_future(self._relay_large(message))

    async def _relay_large(self, message: str | bytes) -> None:
        # Tornado still holds the frame as read from the socket until the event loop turns
        # (tornado reads the next frame only once this returns, so order is kept).
        await asyncio.sleep(0)
        self._relay(message)

    def _relay(self, message: str | bytes) -> None:
        try:
            channel, parts = from_v1(message) if self.v1 else from_legacy(message)
            if channel not in CLIENT_CHANNELS:
                raise ProtocolError(f"messages go to channel shell, control or stdin, not {channel[:20]!r}")
        except ProtocolError as exc:
            log.warning("[kernel %s] dropped an invalid websocket message: %s", self.managed.kernel_id, exc)
            self._tell(f"[eg] the gateway dropped an invalid message from this client: {exc}\n")
            return
        allowed = self.gateway.allowed_message_types
        if allowed and (msg_type := _msg_type(parts)) not in allowed:
            log.warning("[kernel %s] dropped a %r message: not in allowed_message_types", self.managed.kernel_id, msg_type[:60])
            return
        try:
            self.session.send(channel, parts)
        except KeyError:
            pass  # the kernel is shutting down

    def deliver(self, channel: str, parts: list[bytes], header: dict[str, Any] | None) -> None:
        """Send one kernel message to this client (called by the bridge)."""
        if self.v1:
            pieces, binary = v1_pieces(channel, parts), True
        else:
            pieces, binary = legacy_pieces(channel, parts, header if header is not None else json.loads(bytes(parts[0])))
        size = sum(len(piece) for piece in pieces)
        verdict = self.backlog.verdict(channel, parts, header, size)
        if verdict == "drop":
            return
        if verdict == "close":
            log.warning("[kernel %s] closing the websocket of session %s: it does not read its messages", self.managed.kernel_id, self.session_id)
            self.close(1013, "the client did not read its messages; reconnect")
            return
        if size < LARGE_MESSAGE:
            try:
                written = self.write_message(b"".join(pieces), binary=binary)
            except WebSocketClosedError:
                return
        else:
            written = self._write_large_frame(pieces, size, binary)
        if written is not None:
            self.backlog.pending += size
            written.add_done_callback(lambda future: self._written(size, future))

    def _written(self, size: int, written: asyncio.Future) -> None:
        if not written.cancelled():
            written.exception()  # a write to a connection that closed meanwhile: nothing to report
        self.backlog.pending -= size
        notice = self.backlog.caught_up()
        if notice is not None:
            self._tell(notice, self.backlog.dropped_parent)

    def _tell(self, text: str, parent: bytes = b"{}") -> None:
        """Send this client (only) a stderr ``stream`` message from the gateway."""
        self.deliver("iopub", notice_parts(f"eg-{self.managed.kernel_id}", parent, text), None)

    def _write_large_frame(self, pieces: list[bytes], size: int, binary: bool) -> "asyncio.Future | None":
        """Write one unmasked, uncompressed websocket frame piece by piece, so a large kernel
        message (buffers, megabytes of output) is not copied into one payload and then again
        into tornado's frame (RFC 6455 §5.2: FIN + opcode, then the 64-bit length). Returns
        the future of the last write."""
        connection = self.ws_connection
        if connection is None or connection.is_closing() or connection.stream.closed():
            return None
        stream = connection.stream
        written = stream.write(struct.pack("!BBQ", 0x80 | (0x2 if binary else 0x1), 127, size))
        for piece in pieces:
            written = stream.write(piece)
        return written

    def end(self, reason: str) -> None:
        """Close this websocket (replaced by a newer one, or its kernel is gone)."""
        self.close(1000, reason.encode()[:120].decode(errors="ignore"))

    def on_close(self) -> None:
        if self.session is not None:
            self.managed.bridge.detach(self.session_id, self)
            self._event("disconnected")

    def _event(self, event: str) -> None:
        details = {"session_id": self.session_id, "protocol": V1 if self.v1 else "legacy", "connections": self.managed.bridge.connections}
        asyncio.ensure_future(self.gateway.kernels.emit(self.managed.kernel, event, details))


def _msg_type(parts: list) -> str:
    try:
        return str(json.loads(bytes(parts[0])).get("msg_type", ""))
    except (ValueError, AttributeError, IndexError):
        return ""


def websocket_route() -> tuple:
    return (r"api/kernels/(?P<kernel_id>[^/]+)/channels", ChannelsHandler)

