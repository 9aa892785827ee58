"""Jupyter's two websocket protocols, from and to raw ZMQ message parts.

A kernel message arrives from ZMQ as ``[header, parent_header, metadata, content, *buffers]``
(JSON bytes, after the signature). They are forwarded without re-encoding where the protocol
allows it:

- ``v1.kernel.websocket.jupyter.org`` (binary): ``u64le n | n × u64le offsets | channel |
  header | parent_header | metadata | content | buffers...``; the parts go out as they are.
- legacy (no subprotocol): one JSON text frame per message, spliced from the raw JSON parts; a
  message with buffers is a binary frame ``u32be nbufs | offsets | json | buffers...``.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Sequence

V1 = "v1.kernel.websocket.jupyter.org"
CHANNELS = ("shell", "control", "stdin", "iopub")


class ProtocolError(ValueError):
    """A websocket frame that is not a valid message of the connection's protocol."""


# -- kernel -> client -------------------------------------------------------------------------


def v1_pieces(channel: str, parts: Sequence[bytes]) -> list[bytes]:
    """A v1 frame's payload as pieces to write one after the other (the parts are not copied)."""
    chan = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (count + 1)]
    offsets.append(offsets[0] + len(chan))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return [struct.pack(f"<{count + 1}Q", count, *offsets) + chan, *parts]


def to_v1(channel: str, parts: Sequence[bytes]) -> bytes:
    """Frame raw parts for the v1 protocol."""
    return b"".join(v1_pieces(channel, parts))


def legacy_pieces(channel: str, parts: Sequence[bytes], header: dict[str, Any]) -> tuple[list[bytes], bool]:
    """A legacy frame's payload as pieces, and whether the frame is binary (it has buffers)."""
    h, p, m, c = parts[:4]
    buffers = parts[4:]
    tail = b',"channel":"' + channel.encode() + b'"}' if buffers else b',"buffers":[],"channel":"' + channel.encode() + b'"}'
    json_pieces = [
        b'{"header":' + bytes(h) + b',"msg_id":' + json.dumps(header.get("msg_id", "")).encode()
        + b',"msg_type":' + json.dumps(header.get("msg_type", "")).encode() + b',"parent_header":',
        p, b',"metadata":', m, b',"content":', c, tail,
    ]
    if not buffers:
        return json_pieces, False
    json_size = sum(len(piece) for piece in json_pieces)
    sizes = [json_size, *(len(b) for b in buffers)]
    offsets = [4 * (len(sizes) + 1)]
    for size in sizes[:-1]:
        offsets.append(offsets[-1] + size)
    return [struct.pack(f"!{len(sizes) + 1}I", len(sizes), *offsets), *json_pieces, *buffers], True


def to_legacy(channel: str, parts: Sequence[bytes], header: dict[str, Any]) -> tuple[bytes, bool]:
    """Frame raw parts for the legacy protocol; returns ``(payload, is_binary)``."""
    pieces, binary = legacy_pieces(channel, parts, header)
    return b"".join(pieces), binary


# -- client -> kernel -------------------------------------------------------------------------


def from_v1(frame: bytes) -> tuple[str, list[bytes]]:
    """Split a v1 frame into its channel and raw parts."""
    if not isinstance(frame, bytes):
        raise ProtocolError("the v1 protocol takes binary frames, not text")
    try:
        if len(frame) < 8:
            raise ProtocolError("frame too short")
        (count,) = struct.unpack_from("<Q", frame)
        if count < 6 or len(frame) < 8 * (count + 1):
            raise ProtocolError("bad offset count")
        offsets = struct.unpack_from(f"<{count}Q", frame, 8)
        if list(offsets) != sorted(offsets) or offsets[-1] > len(frame):
            raise ProtocolError("bad offsets")
        channel = frame[offsets[0] : offsets[1]].decode()
        parts = [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(str(exc)) from exc
    return channel, parts


def from_legacy(frame: str | bytes) -> tuple[str, list[bytes]]:
    """Parse a legacy frame (JSON text, or the binary layout with buffers) into channel and
    raw parts. A message without a channel goes to shell, as Jupyter Server does."""
    buffers: list[bytes] = []
    try:
        if isinstance(frame, bytes) and frame[:1] != b"{":
            (nbufs,) = struct.unpack_from("!I", frame)
            offsets = list(struct.unpack_from(f"!{nbufs}I", frame, 4)) + [len(frame)]
            pieces = [frame[offsets[i] : offsets[i + 1]] for i in range(nbufs)]
            frame, buffers = pieces[0], pieces[1:]
        msg = json.loads(frame)
    except (ValueError, struct.error, IndexError) as exc:
        raise ProtocolError(f"not a Jupyter message: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
        raise ProtocolError("a message needs a 'header' object")
    channel = msg.get("channel") or "shell"
    if not isinstance(channel, str):
        raise ProtocolError("'channel' must be a string such as \"shell\"")
    # Each value is released as soon as it is encoded: a large cell is held at most twice over.
    parts = [
        json.dumps(msg.pop(key, None) or {}, separators=(",", ":")).encode()
        for key in ("header", "parent_header", "metadata", "content")
    ]
    return channel, parts + buffers
