"""A full rebuild reads each partition in a process of its own, on the real broker: the view is
the one a single reader makes, a forged record is refused there as here, and a process that
fails leaves its partitions to be read here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from services.tasks.adapters.rebuild import RebuildReport, catch_up
from services.tasks.adapters.snapshots import SnapshotStore
from services.tasks.application.view import LogView
from shared.provenance.keys import KeyFolder, SigningKey
from shared.provenance.sealing import SnapshotSeal
from shared.settings import KafkaSettings
from tests.conftest import plan_log_with_a_forgery, writer_key
from tests.samples import plan_log

TASKS = [f"task-{t}" for t in range(6)]


async def rebuilt(
    settings: KafkaSettings, keys: Path, topic: str, folder: Path, in_parts_from: int | None, writers: Any = None
) -> tuple[LogView, RebuildReport]:
    store = SnapshotStore(folder / "tasks.snapshot.sqlite", SnapshotSeal(writer_key(keys)))
    return await catch_up(
        settings, store, KeyFolder(keys).trust(), topic, writers or {topic: {"tasks"}}, in_parts_from=in_parts_from
    )


async def assert_same(one: tuple[LogView, RebuildReport], other: tuple[LogView, RebuildReport]) -> None:
    (view, report), (expected, expected_report) = one, other
    assert (report.events, report.refused, report.skipped) == (expected_report.events, 1, 0)
    assert view.projection.aggregates == expected.projection.aggregates
    assert view.projection.plan_evaluated == expected.projection.plan_evaluated
    assert view.positions.next == expected.positions.next
    assert view.index.answers() == expected.index.answers()
    for task_id in TASKS:
        assert await view.history.of(task_id) == await expected.history.of(task_id)


async def test_a_rebuild_in_parts_makes_the_view_a_single_reader_makes(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, keys_dir: Path, tmp_path: Path
) -> None:
    await plan_log_with_a_forgery(kafka_settings, tasks_key, scratch_topic)
    single = await rebuilt(kafka_settings, keys_dir, scratch_topic, tmp_path, in_parts_from=None)
    assert single[1].events == len(plan_log())
    task = single[0].projection.task("task-0")
    assert task is not None and task.status == "open", "the forged completion is never folded in"
    in_parts = await rebuilt(kafka_settings, keys_dir, scratch_topic, tmp_path, in_parts_from=1)
    await assert_same(in_parts, single)


def _refused_elsewhere() -> NoReturn:
    raise RuntimeError("this mapping cannot be read in another process")


class ReadHereOnly(dict[str, set[str]]):
    """Whose keys may write each topic, in a form no other process can read back."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _refused_elsewhere, ()


async def test_a_partition_whose_process_fails_is_read_here(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, keys_dir: Path, tmp_path: Path
) -> None:
    await plan_log_with_a_forgery(kafka_settings, tasks_key, scratch_topic)
    single = await rebuilt(kafka_settings, keys_dir, scratch_topic, tmp_path, in_parts_from=None)
    writers = ReadHereOnly({scratch_topic: {"tasks"}})
    in_parts = await rebuilt(kafka_settings, keys_dir, scratch_topic, tmp_path, in_parts_from=1, writers=writers)
    await assert_same(in_parts, single)
