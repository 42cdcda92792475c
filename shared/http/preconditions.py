"""``If-Match`` as policytrack reads it, on HTTP and on the command topic: one aggregate
version, bare or as the ETag that carried it (``"7"``, ``W/"7"``), or ``*`` for any."""

from __future__ import annotations

import re

_VERSION = re.compile(r'(?:W/)?"?([1-9][0-9]{0,17})"?')


def parse_if_match(header: str) -> int | None:
    """The version the writer expects, or None for ``*``; ValueError when it is not one."""
    text = header.strip()
    if text == "*":
        return None
    match = _VERSION.fullmatch(text)
    if match is None or text.count('"') not in (0, 2):
        raise ValueError("must be a version number or the ETag that carried it")
    return int(match.group(1))
