"""Page cursors: opaque to clients, strict to read. A cursor is a position (a tuple of short
strings and non-negative 63-bit integers) in URL-safe base64; anything else is refused."""

from __future__ import annotations

import base64
import binascii

import orjson

MAX_CURSOR = 512
MAX_TEXT = 300
MAX_INTEGER = 2**63 - 1
Position = tuple[str | int, ...]


class BadCursor(ValueError):
    def __init__(self) -> None:
        super().__init__("not a cursor this service issued")


def encode_cursor(*position: str | int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(position))).decode().rstrip("=")


def decode_cursor(cursor: str, *shape: type[str] | type[int]) -> Position:
    """The position a cursor of this ``shape`` (e.g. ``str, str``) carries; BadCursor otherwise."""
    if len(cursor) > MAX_CURSOR:
        raise BadCursor()
    try:
        position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as error:
        raise BadCursor() from error
    if not isinstance(position, list) or len(position) != len(shape):
        raise BadCursor()
    for value, kind in zip(position, shape, strict=True):
        if type(value) is not kind:
            raise BadCursor()
        if isinstance(value, int) and not 0 <= value <= MAX_INTEGER:
            raise BadCursor()
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise BadCursor()
    return tuple(position)
