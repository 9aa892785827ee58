"""Where the members of a JSON object lie in its text, so they can be forwarded as they are.

A legacy websocket frame is one JSON object whose ``header``, ``parent_header``, ``metadata``
and ``content`` values become a kernel message's parts. :func:`object_members` checks the
whole text with the standard library's C decoder, one member at a time (each value is decoded
and dropped at once, so a 50 MB cell is held once more only while its own member is checked),
and returns where each value starts and ends; :func:`utf8_offsets` turns those positions into
byte offsets of the encoded text, so the values go on as slices of it, never re-encoded.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

_SPACE = re.compile(r"[ \t\n\r]*")
MAX_NAME = 256  # characters; a longer member name is refused rather than decoded


class JSONScanError(ValueError):
    """The text is not one valid JSON object; says where."""


class Member(NamedTuple):
    start: int  # index of the value's first character in the text
    end: int  # index just past the value
    type: type  # of the decoded value: dict, list, str, int, float, bool or NoneType


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def _skip(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()


def _expect(text: str, pos: int, chars: str) -> str:
    if pos >= len(text) or text[pos] not in chars:
        raise JSONScanError(f"expected one of {' '.join(chars)} at character {pos}")
    return text[pos]


def object_members(text: str) -> dict[str, Member]:
    """Check that ``text`` is one JSON object; return each member's name and where its value
    lies. A repeated name keeps its last value, as :func:`json.loads` does."""
    pos = _skip(text, 0)
    _expect(text, pos, "{")
    pos = _skip(text, pos + 1)
    members: dict[str, Member] = {}
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            _expect(text, pos, '"')
            try:
                name, pos = json.decoder.scanstring(text, pos + 1)
            except ValueError as exc:
                raise JSONScanError(str(exc)) from None
            if len(name) > MAX_NAME:
                raise JSONScanError(f"a member name longer than {MAX_NAME} characters at character {pos}")
            pos = _skip(text, pos)
            _expect(text, pos, ":")
            start = _skip(text, pos + 1)
            try:
                value, end = _decoder.raw_decode(text, start)
            except RecursionError:
                raise JSONScanError(f"the value of {name!r} is nested too deeply") from None
            except ValueError as exc:
                raise JSONScanError(str(exc)) from None
            members[name] = Member(start, end, type(value))
            del value
            pos = _skip(text, end)
            if _expect(text, pos, ",}") == "}":
                pos += 1
                break
            pos = _skip(text, pos + 1)
    if _skip(text, pos) != len(text):
        raise JSONScanError(f"extra data after the object at character {pos}")
    return members


def utf8_offsets(text: str, encoded_length: int, positions: list[int]) -> list[int]:
    """The byte offsets in ``text.encode()`` (``encoded_length`` bytes) of character
    ``positions``. Each is counted from the nearer end of the text, so only the short pieces
    around a long value are encoded again, never the value itself."""
    if text.isascii():
        return list(positions)
    half = len(text) // 2
    return [len(text[:p].encode()) if p <= half else encoded_length - len(text[p:].encode()) for p in positions]
