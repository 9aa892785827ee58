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

from .jsonscan import Member, object_members, utf8_offsets

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


def from_legacy(frame: str | bytes) -> tuple[str, list[bytes | memoryview]]:
    """Split a legacy frame (JSON text, or the binary layout with buffers) into channel and
    raw parts. A message without a channel goes to shell, as Jupyter Server does.

    The frame is checked as JSON but not rebuilt: the header, parent_header, metadata and
    content parts are slices of its UTF-8 text (and the buffers slices of the binary frame),
    so a 50 MB cell is not decoded into Python objects and encoded again."""
    try:
        if isinstance(frame, bytes) and frame[:1] != b"{":
            view = memoryview(frame)
            (nbufs,) = struct.unpack_from("!I", frame)
            offsets = [*struct.unpack_from(f"!{nbufs}I", frame, 4), len(frame)]
            if nbufs < 1 or offsets != sorted(offsets) or offsets[0] < 4 * (nbufs + 1):
                raise ProtocolError("bad buffer offsets")
            pieces = [view[offsets[i] : offsets[i + 1]] for i in range(nbufs)]
            encoded, buffers = pieces[0], pieces[1:]
            text = str(encoded, "utf-8")
        else:
            encoded, buffers = frame, []
            text = frame if isinstance(frame, str) else frame.decode()
        members = object_members(text)
    except (ValueError, struct.error) as exc:  # JSONScanError and UnicodeDecodeError are ValueErrors
        raise ProtocolError(f"not a Jupyter message: {exc}") from exc
    if members.get("header", Member(0, 0, None)).type is not dict:
        raise ProtocolError("a message needs a 'header' object")
    channel = _channel(text, members.get("channel"))
    spans = []
    for key in ("header", "parent_header", "metadata", "content"):
        member = members.get(key)
        if member is None or member.type is type(None):
            spans.append(None)
        elif member.type is dict:
            spans.append(member)
        else:
            raise ProtocolError(f"'{key}' must be an object")
    if isinstance(encoded, str):
        encoded = encoded.encode()
    positions = [p for span in spans if span is not None for p in (span.start, span.end)]
    offsets = iter(utf8_offsets(text, len(encoded), positions))
    view = memoryview(encoded)
    parts = [b"{}" if span is None else view[next(offsets) : next(offsets)] for span in spans]
    return channel, parts + buffers


def _channel(text: str, member: Member | None) -> str:
    if member is None or member.type is type(None):
        return "shell"
    if member.type is not str or member.end - member.start > 200:
        raise ProtocolError("'channel' must be a string such as \"shell\"")
    return json.loads(text[member.start : member.end]) or "shell"
