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
_OPEN = re.compile(r"[ \t\n\r]*\{[ \t\n\r]*")
_PLAIN_NAME = re.compile(r'"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*')  # a name without escapes, and its colon
_AFTER_VALUE = re.compile(r"[ \t\n\r]*([,}])[ \t\n\r]*")
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
    opening = _OPEN.match(text)
    if opening is None:
        raise JSONScanError("expected a JSON object at character 0")
    pos = opening.end()
    members: dict[str, Member] = {}
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            plain = _PLAIN_NAME.match(text, pos)
            name, start = (plain.group(1), plain.end()) if plain else _escaped_name(text, pos)
            if len(name) > MAX_NAME:
                raise JSONScanError(f"a member name longer than {MAX_NAME} characters at character {pos}")
            try:
                value, end = _decoder.raw_decode(text, start)
            except RecursionError:
                raise JSONScanError(f"the value of {name!r} is nested too deeply") from None
            except ValueError as exc:
                raise JSONScanError(str(exc)) from None
            members[name] = Member(start, end, type(value))
            del value
            after = _AFTER_VALUE.match(text, end)
            if after is None:
                raise JSONScanError(f"expected , or }} at character {_skip(text, end)}")
            pos = after.end()
            if after.group(1) == "}":
                break
    if _skip(text, pos) != len(text):
        raise JSONScanError(f"extra data after the object at character {pos}")
    return members


def _escaped_name(text: str, pos: int) -> tuple[str, int]:
    """A member name with escapes in it (or not a name): the name and where its value starts."""
    pos = _skip(text, pos)
    _expect(text, pos, '"')
    try:
        name, pos = json.decoder.scanstring(text, pos + 1)
    except ValueError as exc:
        raise JSONScanError(str(exc)) from None
    pos = _skip(text, pos)
    _expect(text, pos, ":")
    return name, _skip(text, pos + 1)


def utf8_offsets(text: str, encoded_length: int, positions: list[int]) -> list[int]:
    """The byte offsets in ``text.encode()`` (``encoded_length`` bytes) of character
    ``positions``. Each is counted from the nearer end of the text, so only the short pieces
    around a long value are encoded again, never the value itself."""
    if text.isascii():
        return list(positions)
    half = len(text) // 2
    return [len(text[:p].encode()) if p <= half else encoded_length - len(text[p:].encode()) for p in positions]
