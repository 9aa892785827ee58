"""``/api/kernels/{id}/channels``: websocket clients bridged to a kernel's ZMQ channels."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .handlers import APIHandler, AuthMixin
from .wsproto import V1, ProtocolError, from_legacy, from_v1, to_legacy, to_v1

log = logging.getLogger("eg.websocket")
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
        try:
            self.session.send(channel, parts)
        except KeyError:
            pass  # the kernel is shutting down

    def deliver(self, channel: str, parts: list[bytes], header: dict[str, Any] | None) -> None:
        """Send one kernel message to this client (called by the bridge)."""
        if self.v1:
            payload, binary = to_v1(channel, parts), True
        else:
            payload, binary = to_legacy(channel, parts, header if header is not None else json.loads(parts[0]))
        try:
            self.write_message(payload, binary=binary)
        except WebSocketClosedError:
            pass

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


def websocket_route() -> tuple:
    return (r"api/kernels/(?P<kernel_id>[^/]+)/channels", ChannelsHandler)

