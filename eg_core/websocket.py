"""``/api/kernels/{id}/channels``: websocket clients bridged to a kernel's ZMQ channels."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import uuid
from typing import Any

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .handlers import APIHandler, AuthMixin
from .wsproto import V1, ProtocolError, from_legacy, from_v1, legacy_pieces, v1_pieces

log = logging.getLogger("eg.websocket")
LARGE_MESSAGE = 256 * 1024  # bytes; smaller messages go out through tornado as one payload
CLIENT_CHANNELS = frozenset(("shell", "control", "stdin"))


class ChannelsHandler(AuthMixin, WebSocketHandler):
    """One websocket client of a kernel, in the legacy JSON or the v1 binary protocol."""

    session = None

    async def prepare(self) -> None:
        self.check_token()
        self.managed = await self.gateway.kernels.lookup(self.path_kwargs["kernel_id"])

    _handle_request_exception = APIHandler._handle_request_exception
    write_error = APIHandler.write_error

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
        self.session = self.managed.bridge.attach(self.session_id, self)
        self._event("connected")
        log.debug("[kernel %s] websocket open, session %s, protocol %s", kernel_id, self.session_id, V1 if self.v1 else "legacy")

    def on_message(self, message: str | bytes) -> None:
        try:
            channel, parts = from_v1(message) if self.v1 else from_legacy(message)
        except ProtocolError as exc:
            log.warning("[kernel %s] dropped an invalid websocket message: %s", self.managed.kernel_id, exc)
            return
        if channel not in CLIENT_CHANNELS:
            log.warning("[kernel %s] dropped a message for channel %r", self.managed.kernel_id, channel[:20])
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
        if size < LARGE_MESSAGE:
            try:
                self.write_message(b"".join(pieces), binary=binary)
            except WebSocketClosedError:
                pass
            return
        self._write_large_frame(pieces, size, binary)

    def _write_large_frame(self, pieces: list[bytes], size: int, binary: bool) -> None:
        """Write one unmasked, uncompressed websocket frame piece by piece, so a large kernel
        message (buffers, megabytes of output) is not copied into one payload and then again
        into tornado's frame (RFC 6455 §5.2: FIN + opcode, then the 64-bit length)."""
        connection = self.ws_connection
        if connection is None or connection.is_closing() or connection.stream.closed():
            return
        stream = connection.stream
        stream.write(struct.pack("!BBQ", 0x80 | (0x2 if binary else 0x1), 127, size))
        for piece in pieces:
            stream.write(piece)

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

