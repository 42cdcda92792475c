"""Seals on a service's own snapshots: derived data it keeps on disk so a start reads only the
newer part of the log. A snapshot is sealed with a secret derived from the service's signing
key and bound to the log positions it claims; one whose seal fails is discarded and the state
rebuilt from the log, never trusted.

Rows carry a keyed MAC each (BLAKE2b), and per table the seal covers the XOR of all of them: a
row changed, added, removed, or put back as an older copy breaks the seal, and a snapshot is
updated in place with work for the rows that changed only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from shared.provenance.keys import SigningKey

MAC_BYTES = 16
SNAPSHOT_PURPOSE = "snapshot-seal"


class SealBroken(Exception):
    """The snapshot is not as its service sealed it."""


class SnapshotSeal:
    """The sealing secret of one service's snapshots."""

    def __init__(self, key: SigningKey) -> None:
        self._secret = key.secret_for(SNAPSHOT_PURPOSE)

    def row(self, table: str, *fields: bytes | str | int | None) -> bytes:
        """The MAC of one row: its table and every field, each length-prefixed."""
        mac = hashlib.blake2b(table.encode(), key=self._secret, digest_size=MAC_BYTES)
        for field in fields:
            raw = b"\xff" if field is None else str(field).encode() if isinstance(field, int | str) else field
            mac.update(len(raw).to_bytes(4, "big"))
            mac.update(raw)
        return mac.digest()

    def document(self, content: object) -> str:
        """The seal of a whole document (the snapshot's claim and its tables' sums)."""
        return hmac.new(self._secret, orjson.dumps(content, option=orjson.OPT_SORT_KEYS), "sha256").hexdigest()

    def holds(self, content: object, seal: str) -> bool:
        return hmac.compare_digest(self.document(content), seal)


def xor(macs: Iterable[bytes], start: int = 0) -> int:
    """The sum a table's seal covers: the XOR of its rows' MACs."""
    total = start
    for mac in macs:
        total ^= int.from_bytes(mac, "big")
    return total


def create_private(path: Path) -> None:
    """The file readable by its owner only, from its first byte (SQLite gives its WAL and
    shared-memory files the database file's mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        path.chmod(0o600)
