"""Verification derives the query columns of a long trail's entries in a second process: the
columns are the ones one process derives, and if the process cannot run they are derived here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.adapters.chaining import DERIVED, chained, derive, iso
from services.audit.adapters.derivation import Derivation
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.domain.chain import LogRecord
from shared.contract.catalog import TaskProgressReported
from shared.contract.codec import DecodeFailure, decode, encode
from shared.contract.envelope import new_event
from shared.contract.topics import EVENTS
from shared.contract.types import EARLIEST, LATEST
from tests.unit.test_audit_export import log_of_every_kind


async def stored_and_derived_here(folder: Path) -> tuple[list[StoredEntry], list[tuple[object, ...]]]:
    """Entries of every kind as stored, and their columns as one process derives them."""
    records = log_of_every_kind()
    store = AuditStore(f"sqlite+aiosqlite:///{folder / 'audit.db'}")
    await store.open()
    try:
        await store.write(chained(records, store.head))
        rows, _ = await store.page(StoredEntry, EntryFilter(), 10)
    finally:
        await store.close()
    return rows, [tuple(derive(record)[name] for name in DERIVED) for record in records]


async def test_a_second_process_derives_the_columns_one_process_derives(tmp_path: Path) -> None:
    rows, in_one = await stored_and_derived_here(tmp_path)
    async with Derivation(len(rows), apart_from=0) as derivation:
        assert derivation.apart
        assert await derivation.columns(rows, derivation.ahead(rows)) == in_one
    async with Derivation(len(rows), apart_from=len(rows) + 1) as derivation:
        assert not derivation.apart
        assert await derivation.columns(rows, derivation.ahead(rows)) == in_one
    assert in_one[0][DERIVED.index("actor")] == "u-jilin" and in_one[2][DERIVED.index("decode_error")]


async def test_when_the_process_is_gone_the_columns_are_derived_here(tmp_path: Path) -> None:
    rows, in_one = await stored_and_derived_here(tmp_path)
    async with Derivation(len(rows), apart_from=0) as derivation:
        assert await derivation.columns(rows, derivation.ahead(rows)) == in_one
        for process in list(derivation._pool._processes.values()):  # type: ignore[union-attr]  # the pool is started
            process.kill()
            process.join()
        assert await derivation.columns(rows, derivation.ahead(rows)) == in_one
        assert not derivation.apart


WRITTEN_FORMS: list[Callable[[datetime], str]] = [
    iso,
    datetime.isoformat,
    lambda moment: moment.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="microseconds"),
    lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    lambda moment: iso(moment).replace("Z", "+00:00"),
]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None), timezones=st.just(UTC)
    ),
    written=st.sampled_from(WRITTEN_FORMS),
)
def test_the_event_time_column_is_the_moment_in_iso_form_however_the_writer_wrote_it(
    moment: datetime, written: Callable[[datetime], str]
) -> None:
    encoded = encode(new_event(TaskProgressReported(task_id="t-1", percent=5), actor="u-jilin", time=moment))
    headers = tuple((name, written(moment).encode() if name == "ce_time" else value) for name, value in encoded.headers)
    event = decode(encoded.key, encoded.value, headers)
    assert not isinstance(event, DecodeFailure), event
    derived = derive(LogRecord(EVENTS, 0, 0, 0, encoded.key, encoded.value, headers))
    assert derived["event_time"] == iso(event.time) and derived["decode_error"] is None
