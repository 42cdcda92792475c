"""Verification derives the query columns of a long trail's entries in a second process: the
columns are the ones one process derives, and if the process cannot run they are derived here."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.adapters.chaining import DERIVED, chained, decode_headers, derive, iso
from services.audit.adapters.derivation import Derivation
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.domain.chain import LogRecord, headers_json
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


@given(st.lists(st.tuples(st.text(max_size=16), st.none() | st.binary(max_size=48)), max_size=16).map(tuple))
def test_stored_headers_read_back_as_they_were(headers: tuple[tuple[str, bytes | None], ...]) -> None:
    assert decode_headers(headers_json(headers)) == headers


@given(st.lists(st.tuples(st.text(max_size=8), st.none() | st.text(alphabet="QUJDYWJj01+/=-_ \n", max_size=12))))
def test_a_stored_form_changed_in_the_store_reads_as_it_always_did(pairs: list[tuple[str, str | None]]) -> None:
    """What a check finds in a tampered row must not depend on which reader read it: whenever
    the fast reader takes a form, it reads what base64.b64decode reads."""
    try:
        expected = tuple((name, None if value is None else base64.b64decode(value)) for name, value in pairs)
    except binascii.Error:
        with pytest.raises(binascii.Error):
            decode_headers(orjson.dumps(pairs))
    else:
        assert decode_headers(orjson.dumps(pairs)) == expected
