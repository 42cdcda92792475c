"""The schedule's snapshot: what comes back is the schedule that was kept, and it goes on to
send the same alerts at the same moments; a file that is not a snapshot is never trusted."""

from __future__ import annotations

import stat
import tracemalloc
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from services.notifications.adapters.snapshots import (
    CODE_VERSION,
    ROWS_PER_PIECE,
    ScheduleSnapshots,
    SnapshotUnreadable,
    capture,
)
from services.notifications.domain.schedule import Schedule
from shared.contract import catalog as c
from shared.contract.codes import Department, TaskHealth
from shared.kafka.snapshots import Claim
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SnapshotSeal
from tests.unit.test_notification_schedule import POLICY, T0, at, schedule_with_milestone

DUE = T0 + timedelta(days=60)


def busy_schedule() -> tuple[Schedule, list[c.Notice]]:
    """A milestone part-way through its alerts, a plan, a support request being watched, and
    an at-risk alert decided but not yet emitted."""
    schedule = schedule_with_milestone(DUE)
    schedule.apply(at(T0, c.PlanApproved(plan_id="p", title="The plan")))
    schedule.apply(
        at(
            T0,
            c.SupportRequested(
                request_id="r",
                issue_id="i",
                task_id="t",
                departments=(Department.MOFCOM, Department.GACC),
                need="x",
                by=DUE,
            ),
        )
    )
    schedule.apply(at(T0, c.SupportAcknowledged(request_id="r", issue_id="i", task_id="t", department=Department.GACC)))
    pending = schedule.apply(
        at(T0, c.TaskHealthChanged(task_id="t", health=TaskHealth.AT_RISK, previous=TaskHealth.ON_TRACK))
    )
    assert pending, "an at-risk change calls for an alert at once"
    schedule.due_alerts(DUE - timedelta(days=20))  # the 30-day alert is gone already
    return schedule, pending


def alerts_from(schedule: Schedule, start: timedelta, until: timedelta) -> list[tuple[str, str]]:
    sent, now = [], DUE + start
    while now <= DUE + until:
        sent += [(now.isoformat(), alert.alert_id) for alert in schedule.due_alerts(now)]
        now += timedelta(hours=6)
    return sent


def sealed_by(tmp_path: Path) -> SnapshotSeal:
    return SnapshotSeal(KeyFolder(tmp_path / "keys").signing_key("notifications", create=True))


def test_a_restored_schedule_is_the_one_kept_and_sends_the_same_alerts(tmp_path: Path) -> None:
    kept, pending = busy_schedule()
    snapshots = ScheduleSnapshots(tmp_path / "schedule.snapshot.json", sealed_by(tmp_path))
    snapshots.save(capture(kept, pending, {0: (42, "event-41"), 2: (7, "event-6")}))

    claim = snapshots.claim()
    assert isinstance(claim, Claim)
    assert stat.S_IMODE(snapshots.path.stat().st_mode) == 0o600
    assert (claim.code_version, claim.topic) == (CODE_VERSION, "policy.events")
    assert claim.positions == {0: (42, "event-41"), 2: (7, "event-6")}
    resumed = snapshots.restore(POLICY)
    assert resumed.schedule.deadlines == kept.deadlines
    assert resumed.schedule.tasks == kept.tasks
    assert resumed.schedule.plans == kept.plans
    assert resumed.schedule.support.watched == kept.support.watched
    assert resumed.pending == pending
    assert resumed.positions == claim.positions

    # What was emitted comes back from the alerts on the log, as a start reads them.
    resumed.schedule.emitted |= kept.emitted
    expected = alerts_from(kept, -timedelta(days=20), timedelta(days=10))
    assert len(expected) >= 5, "approaching, due, overdue, escalated and the support request's alerts"
    assert alerts_from(resumed.schedule, -timedelta(days=20), timedelta(days=10)) == expected


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"code_version": "x", "topic": "policy.events"}'],
)
def test_a_file_that_is_not_a_whole_snapshot_is_never_restored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "schedule.snapshot.json"
    path.write_bytes(content)
    snapshots = ScheduleSnapshots(path, sealed_by(tmp_path))
    assert isinstance(snapshots.claim(), SnapshotUnreadable)
    with pytest.raises(SnapshotUnreadable):
        snapshots.restore(POLICY)


def test_a_snapshot_changed_on_disk_or_sealed_by_another_key_is_never_restored(tmp_path: Path) -> None:
    kept, pending = busy_schedule()
    path = tmp_path / "schedule.snapshot.json"
    ScheduleSnapshots(path, sealed_by(tmp_path)).save(capture(kept, pending, {0: (42, "event-41")}))
    sealed = path.read_bytes()
    path.write_bytes(sealed.replace(b'"JILIN"', b'"MOFCOM"', 1))
    changed = ScheduleSnapshots(path, sealed_by(tmp_path))
    assert "seal does not hold" in str(changed.claim())
    with pytest.raises(SnapshotUnreadable):
        changed.restore(POLICY)
    path.write_bytes(sealed)
    assert isinstance(ScheduleSnapshots(path, sealed_by(tmp_path / "another")).claim(), SnapshotUnreadable)


def test_a_missing_snapshot_claims_nothing(tmp_path: Path) -> None:
    assert ScheduleSnapshots(tmp_path / "none.json", sealed_by(tmp_path)).claim() is None


def many_deadlines(count: int) -> Schedule:
    schedule = schedule_with_milestone(DUE)
    for n in range(count):
        schedule.apply(at(T0, c.MilestoneScheduled(task_id="t", milestone_id=f"m{n}", title=f"里程碑 {n}", due=DUE)))
    return schedule


@pytest.mark.parametrize("deadlines", [0, ROWS_PER_PIECE - 1, ROWS_PER_PIECE, 2 * ROWS_PER_PIECE + 5])
def test_a_schedule_of_any_size_is_one_document_in_pieces_and_restores(tmp_path: Path, deadlines: int) -> None:
    kept = many_deadlines(deadlines)
    pieces = capture(kept, [], {0: (9, "event-8")})
    document = orjson.loads(b"".join(pieces))
    assert len(document["deadlines"]) == len(kept.deadlines) == deadlines + len(many_deadlines(0).deadlines)
    snapshots = ScheduleSnapshots(tmp_path / "schedule.snapshot.json", sealed_by(tmp_path))
    snapshots.save(pieces)
    assert set(snapshots.restore(POLICY).schedule.deadlines) == set(kept.deadlines)


def test_capturing_a_large_schedule_holds_about_its_size() -> None:
    kept = many_deadlines(20_000)
    tracemalloc.start()
    try:
        pieces = capture(kept, [], {0: (9, "event-8")})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum(map(len, pieces))
    # Encoded whole, its rows and orjson's growing buffer were three times its size at once.
    assert peak < 2 * size, (size, peak)
