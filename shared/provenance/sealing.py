"""Seals on a service's own snapshots: derived data it keeps on disk so a start reads only the
newer part of the log. A snapshot is sealed with a secret derived from the service's signing
key and bound to the log positions it claims; one whose seal fails is discarded and the state
rebuilt from the log, never trusted.

Rows carry a keyed MAC each (BLAKE2b), and per table the seal covers the XOR of all of them: a
row changed, added, removed, or put back as an older copy breaks the seal, and a snapshot is
updated in place with work for the rows that changed only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import operator
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # a share's process imports this module alone, and the keys bring the settings (0.14 s)
    from shared.provenance.keys import SigningKey

MAC_BYTES = 16
SNAPSHOT_PURPOSE = "snapshot-seal"
TEXT_PIECE = 1 << 16
"""How much of a sealed text is decoded and escaped at a time (``text_seal``)."""


class SealBroken(Exception):
    """The snapshot is not as its service sealed it."""


class SnapshotSeal:
    """The sealing secret of one service's snapshots."""

    def __init__(self, key: SigningKey) -> None:
        self._secret = key.secret_for(SNAPSHOT_PURPOSE)

    def row(self, table: str, *fields: bytes | str | int | None) -> bytes:
        return row_mac(self._secret, table, *fields)

    def table_sum(self, path: Path, table: str, columns: tuple[str, ...], ranged_by: str, cuts: Iterable[str]) -> int:
        """The sum of a table's rows, read in processes of their own, one a range of ``ranged_by``
        (the first column of the table's key) between the ``cuts``: what a restore checks of a
        long history, on every core. Each process reads only its range of the key, not the whole
        table; the ranges hold every row once, whatever the cuts (a key that is NULL goes with the
        first), and the sum is a XOR, so the shares add up to one pass over the table however
        unevenly they fall. The processes run ``python -m shared.provenance.sealing``:
        multiprocessing would import the caller's main module (a whole service) in each; the
        secret reaches them on their stdin."""
        bounds = [None, *sorted(set(cuts)), None]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", __name__, str(path), table, ",".join(columns), ranged_by]
                + [orjson.dumps(bound).decode() for bound in share],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for share in itertools.pairwise(bounds)
        ]
        for worker in workers:  # every share starts before any is waited for
            assert worker.stdin is not None
            worker.stdin.write(self._secret.hex().encode())
            worker.stdin.close()
        parts = []
        for worker in workers:
            assert worker.stdout is not None and worker.stderr is not None
            out, err = worker.stdout.read(), worker.stderr.read()  # a share writes one line, or its error
            if worker.wait(timeout=SHARE_TIMEOUT_SECONDS) != 0:
                raise ShareFailed(err.decode(errors="replace")[-500:])
            parts.append(int(out))
        return functools.reduce(operator.xor, parts, 0)

    def document(self, content: object) -> str:
        """The seal of a whole document (the snapshot's claim and its tables' sums)."""
        return hmac.new(self._secret, orjson.dumps(content, option=orjson.OPT_SORT_KEYS), "sha256").hexdigest()

    def holds(self, content: object, seal: str) -> bool:
        return hmac.compare_digest(self.document(content), seal)

    def text_seal(self, raw: bytes | Iterable[bytes], piece: int = TEXT_PIECE) -> str:
        """``document`` of the text ``raw`` holds (UTF-8, undecodable bytes replaced), given whole
        or as pieces that each end where a character does, a piece at a time: the notifications
        snapshot of 100,000 deadlines is 16 MB, and its text and the text's JSON were two more
        copies of it at every write (bench.notifications_service)."""
        mac = hmac.new(self._secret, b'"', "sha256")
        for given in [raw] if isinstance(raw, bytes) else raw:
            for text in _pieces(given, piece):
                # JSON escapes character by character, so the pieces' escapes make the whole one's.
                mac.update(orjson.dumps(text.decode(errors="replace"))[1:-1])
        mac.update(b'"')
        return mac.hexdigest()

    def holds_text(self, raw: bytes, seal: str) -> bool:
        return hmac.compare_digest(self.text_seal(raw), seal)


def _pieces(raw: bytes, size: int) -> Iterable[bytes]:
    """``raw`` in pieces of about ``size`` bytes, each cut before an ASCII byte, which never
    falls inside a UTF-8 sequence: the pieces decode as the whole does."""
    start = 0
    while start < len(raw):
        end = min(start + size, len(raw))
        while end < len(raw) and raw[end] >= 0x80:
            end += 1
        yield raw[start:end]
        start = end


def row_mac(secret: bytes, table: str, *fields: bytes | str | int | None) -> bytes:
    """The MAC of one row: its table and every field, each length-prefixed."""
    mac = _keyed(secret, table).copy()
    for field in fields:
        raw = b"\xff" if field is None else str(field).encode() if isinstance(field, int | str) else field
        mac.update(len(raw).to_bytes(4, "big") + raw)
    return mac.digest()


@functools.lru_cache(maxsize=16)
def _keyed(secret: bytes, table: str) -> hashlib.blake2b:
    """The MAC's state after the key and the table's name, copied for each row: keying BLAKE2b
    anew is a fifth of a row's MAC, and a restore makes a million of them."""
    return hashlib.blake2b(table.encode(), key=secret, digest_size=MAC_BYTES)


def _share(
    path: str, secret: bytes, table: str, columns: tuple[str, ...], ranged_by: str, share: tuple[str | None, str | None]
) -> int:
    """One process's share of a table's sum: the rows whose ``ranged_by`` is from ``share[0]``
    (or the lowest, and NULL) to before ``share[1]`` (or the highest)."""
    low, high = share
    bounds = {f"{ranged_by} >= ?": low, f"{ranged_by} < ?": high}
    given = {condition: bound for condition, bound in bounds.items() if bound is not None}
    # The names are the caller's own, never a reader's. Each range is a statement of its own, so
    # that SQLite walks just that part of the key (an OR of the NULLs would make it read every row).
    select = f"SELECT {', '.join(columns)} FROM {table} WHERE "
    queries = [(select + (" AND ".join(given) or "1"), list(given.values()))]
    if low is None and high is not None:  # a NULL key is in no range: the first takes it
        queries.append((select + f"{ranged_by} IS NULL", []))
    total = 0
    with closing(sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)) as db:
        for query in queries:
            total = xor((row_mac(secret, table, *row) for row in db.execute(*query)), total)
    return total


class ShareFailed(RuntimeError):
    """A process checking a share of a table's sum did not give it."""


SHARE_TIMEOUT_SECONDS = 600


def _main(arguments: list[str]) -> None:
    path, table, columns, ranged_by, low, high = arguments
    secret = bytes.fromhex(sys.stdin.read().strip())
    print(_share(path, secret, table, tuple(columns.split(",")), ranged_by, (orjson.loads(low), orjson.loads(high))))


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


if __name__ == "__main__":
    _main(sys.argv[1:])
