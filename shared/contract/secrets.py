"""Headers that carry secrets: stripped from every record before it is dead-lettered or stored.

Commands travel with the caller's bearer token; a record that no consumer could handle is
kept forever on ``policy.deadletter`` and in the audit trail, where anyone who reads
everything would find the token and could replay it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter

RecordHeaders = tuple[tuple[str, bytes | None], ...]

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
SECRET_WORDS = ("token", "secret", "password")
_name = itemgetter(0)


@lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    # Remembered: every record asks about the same few names, and this runs on every record
    # the audit ingests.
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in SECRET_WORDS)


def strip_secrets(headers: Iterable[tuple[str, bytes | None]]) -> tuple[RecordHeaders, tuple[str, ...]]:
    """The headers without the secret ones, and the names of those removed (in order)."""
    headers = tuple(headers)
    if not any(map(is_secret, map(_name, headers))):  # iterated in C: every record is asked
        return headers, ()
    kept: list[tuple[str, bytes | None]] = []
    removed: list[str] = []
    for name, value in headers:
        if is_secret(name):
            removed.append(name)
        else:
            kept.append((name, value))
    return tuple(kept), tuple(removed)
