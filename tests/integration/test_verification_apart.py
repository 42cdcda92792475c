"""Verification with the log compared in processes of their own, a few partitions each, on the
real broker: an intact trail verifies as the one walk verifies it, and every kind of damage the
one walk finds is found by the split too, and then named exactly as the one walk names it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from services.audit.adapters.store import AuditStore
from services.audit.application import verification
from services.audit.application.log_comparison import PartitionsCompared, PartitionsToCompare, compare_partitions
from services.audit.application.verification import Verifier, verify
from services.audit.domain.chain import LogRecord, canonical, chain_hash
from services.audit.entrypoints.ingest import Ingestor
from shared.provenance.keys import KeyFolder, SigningKey
from shared.settings import KafkaSettings
from shared.supervision import Health
from tests.conftest import eventually, plan_log_with_a_forgery, resolved
from tests.samples import plan_log

CHAIN, ORIGIN = "test-chain", "test.local/audit"
Tamper = Callable[[sqlite3.Connection], None]


async def ingested(settings: KafkaSettings, keys: Path, topic: str, database: Path) -> None:
    store = AuditStore(f"sqlite+aiosqlite:///{database}")
    await store.open()
    ingestor = Ingestor(settings, store, 500, CHAIN, KeyFolder(keys).trust(), ORIGIN, (topic,), {topic: {"tasks"}})
    running = asyncio.create_task(ingestor.run(Health("ingest")))
    try:
        entries = len(plan_log())
        await eventually(lambda: resolved(store.head.sequence >= entries or None), what="the log ingested")
    finally:
        ingestor.stop()
        await running
        await store.close()


async def verified(settings: KafkaSettings, keys: Path, topic: str, database: Path, apart: bool) -> dict[str, Any]:
    store = AuditStore(f"sqlite+aiosqlite:///{database}")
    await store.open()
    try:
        found = await verify(
            store,
            KeyFolder(keys).trust(),
            CHAIN,
            ORIGIN,
            settings,
            (topic,),
            writers={topic: {"tasks"}},
            compare_apart_from=0 if apart else None,
        )
    finally:
        await store.close()
    return found.as_dict()


def rechained(db: sqlite3.Connection, first: int) -> None:
    """Every hash from entry ``first`` on made again over what the entries now hold: the forger
    who also rewrites the chain."""
    previous = db.execute("select hash from audit_entries where seq = ?", (first - 1,)).fetchone()
    previous_hash = previous[0] if previous else "0" * 64
    rows = db.execute(
        "select seq, topic, partition, offset, timestamp, key, value, headers from audit_entries "
        "where seq >= ? order by seq",
        (first,),
    ).fetchall()
    for seq, topic, partition, offset, timestamp, key, value, headers in rows:
        digest = chain_hash(
            previous_hash, canonical(LogRecord(topic, partition, offset, timestamp, key, value, ()), headers)
        )
        db.execute("update audit_entries set prev_hash = ?, hash = ? where seq = ?", (previous_hash, digest, seq))
        previous_hash = digest


def value_edited_and_rechained(db: sqlite3.Connection) -> None:
    db.execute("update audit_entries set value = cast('{}' as blob) where seq = 7")
    rechained(db, 7)


def column_edited(db: sqlite3.Connection) -> None:
    db.execute("update audit_entries set actor = 'someone-else' where seq = 5")


def entries_of_a_partition_swapped_and_rechained(db: sqlite3.Connection) -> None:
    first, second = (
        row[0] for row in db.execute("select seq from audit_entries where partition = 0 order by seq limit 2 offset 3")
    )
    db.execute("update audit_entries set seq = -1 where seq = ?", (first,))
    db.execute("update audit_entries set seq = ? where seq = ?", (first, second))
    db.execute("update audit_entries set seq = ? where seq = -1", (second,))
    rechained(db, first)


def entry_removed_and_rechained(db: sqlite3.Connection) -> None:
    db.execute("delete from audit_entries where seq = 9")
    db.execute("update audit_entries set seq = seq - 1 where seq > 9")
    rechained(db, 9)


def newest_entry_removed(db: sqlite3.Connection) -> None:
    db.execute("delete from audit_entries where seq = (select max(seq) from audit_entries)")


def refused_record_forgotten(db: sqlite3.Connection) -> None:
    db.execute("delete from audit_refused")


def cannot_compare(job: Any) -> NoReturn:
    """Run in the comparing process in place of the comparison."""
    raise RuntimeError("this process cannot compare")


def let_compare(store_url: str) -> Path:
    """The file whose presence lets ``compare_when_let`` compare: beside the store's database."""
    return Path(store_url.removeprefix("sqlite+aiosqlite:///")).with_suffix(".let-compare")


def compare_when_let(job: PartitionsToCompare) -> PartitionsCompared:
    """Run in the comparing process in place of the comparison: it compares once the test lets it."""
    deadline = time.monotonic() + 60
    while not let_compare(job.store_url).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never let the comparison start")
        time.sleep(0.02)
    return compare_partitions(job)


@pytest.fixture
async def intact(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, keys_dir: Path, tmp_path: Path
) -> Path:
    await plan_log_with_a_forgery(kafka_settings, tasks_key, scratch_topic)
    database = tmp_path / "intact.db"
    await ingested(kafka_settings, keys_dir, scratch_topic, database)
    return database


@pytest.fixture
def splits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each verification's split said: True when every comparison held."""
    said: list[bool] = []
    split = Verifier._walk_beside_comparisons

    async def watched(self: Verifier, *args: Any) -> bool:
        said.append(await split(self, *args))
        return said[-1]

    monkeypatch.setattr(Verifier, "_walk_beside_comparisons", watched)
    return said


async def test_an_intact_trail_verifies_apart_as_in_one_walk(
    kafka_settings: KafkaSettings, scratch_topic: str, keys_dir: Path, intact: Path, splits: list[bool]
) -> None:
    one = await verified(kafka_settings, keys_dir, scratch_topic, intact, apart=False)
    apart = await verified(kafka_settings, keys_dir, scratch_topic, intact, apart=True)
    assert splits == [True], "the split compared every entry and its answer stood"
    assert apart == one
    assert one["ok"] is True and one["entries"] == len(plan_log()) and len(one["forgeries"]) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        column_edited,
        value_edited_and_rechained,
        entries_of_a_partition_swapped_and_rechained,
        entry_removed_and_rechained,
        newest_entry_removed,
        refused_record_forgotten,
    ],
)
async def test_damage_the_split_finds_is_named_as_the_one_walk_names_it(
    kafka_settings: KafkaSettings,
    scratch_topic: str,
    keys_dir: Path,
    intact: Path,
    tmp_path: Path,
    splits: list[bool],
    tamper: Tamper,
) -> None:
    damaged = tmp_path / "damaged.db"
    shutil.copy(intact, damaged)
    with sqlite3.connect(damaged) as db:
        tamper(db)
    one = await verified(kafka_settings, keys_dir, scratch_topic, damaged, apart=False)
    apart = await verified(kafka_settings, keys_dir, scratch_topic, damaged, apart=True)
    assert one["ok"] is False, one
    assert splits == [False], "the split found something amiss"
    assert apart == one


async def test_when_a_comparing_process_fails_the_one_walk_answers(
    kafka_settings: KafkaSettings, scratch_topic: str, keys_dir: Path, intact: Path, splits: list[bool]
) -> None:
    one = await verified(kafka_settings, keys_dir, scratch_topic, intact, apart=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verification, "compare_partitions", cannot_compare)
        apart = await verified(kafka_settings, keys_dir, scratch_topic, intact, apart=True)
    assert splits == [False]
    assert apart == one and one["ok"] is True


async def test_progress_counts_an_entry_checked_only_when_its_comparison_with_the_log_is_done(
    kafka_settings: KafkaSettings, scratch_topic: str, keys_dir: Path, intact: Path
) -> None:
    """The walk of the chain ends well before the comparisons: its count alone said every entry
    was checked while the log was still being compared (``POST /v1/audit/verify?progress=true``
    said so for the last seconds of a long verification)."""
    reports: list[tuple[int, int]] = []
    store = AuditStore(f"sqlite+aiosqlite:///{intact}")
    await store.open()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(verification, "compare_partitions", compare_when_let)
            running = asyncio.create_task(
                verify(
                    store,
                    KeyFolder(keys_dir).trust(),
                    CHAIN,
                    ORIGIN,
                    kafka_settings,
                    (scratch_topic,),
                    progress=lambda checked, of: reports.append((checked, of)),
                    writers={scratch_topic: {"tasks"}},
                    compare_apart_from=0,
                )
            )
            await eventually(lambda: resolved(reports or None), what="a report of progress")
            while_held = list(reports)
            let_compare(store.url).touch()
            found = await running
    finally:
        await store.close()
    entries = len(plan_log())
    assert found.ok, found.as_dict()
    assert while_held and all(checked == 0 for checked, _ in while_held), while_held
    assert reports[-1] == (entries, entries)
    assert reports == sorted(reports), "progress never goes back"
