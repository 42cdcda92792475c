"""The notifications service starts from a snapshot of its schedule plus the domain events
after it, against the real broker, and still sends each alert once; a snapshot the log does not
bear out is discarded, never trusted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from policytrack.processes import ServiceProcess
from services.notifications.adapters.snapshots import SEALED
from shared.provenance.keys import load_signing_key
from shared.provenance.sealing import SnapshotSeal
from tests.conftest import Receiver, ServiceFactory, eventually, readiness
from tests.integration.test_notifications_service import FAST, milestone, new_task, subscribe, wait_for_kinds

KINDS = ["deadline_approaching", "deadline_due", "overdue"]


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Path:
    return tmp_path / "schedule.snapshot.json"


@pytest.fixture
def tasks(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("tasks").start()


@pytest.fixture
def notifications(service_factory: ServiceFactory, snapshot_file: Path) -> ServiceProcess:
    return service_factory(
        "notifications",
        **FAST,
        POLICYTRACK_NOTIFICATIONS_SNAPSHOT_PATH=str(snapshot_file),
        POLICYTRACK_NOTIFICATIONS_SNAPSHOT_INTERVAL_SECONDS="0.2",
    ).start()


async def snapshot_holds_everything(service: ServiceProcess, open_deadlines: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        ready = await readiness(service)
        settled = ready["events_since_snapshot"] == 0 and ready["open_deadlines"] == open_deadlines
        return ready if settled else None

    return await eventually(probe, timeout=30, what=f"a snapshot holding {open_deadlines} open deadlines")


async def test_a_restart_reads_only_the_events_after_the_snapshot_and_alerts_once(
    tasks: ServiceProcess, notifications: ServiceProcess, receiver: Receiver
) -> None:
    already = (await readiness(notifications))["open_deadlines"]  # other tests' deadlines share the broker
    task_id = await new_task(tasks)
    secret = await subscribe(notifications, receiver, task_id)
    due = datetime.now(UTC) + timedelta(seconds=12)
    milestone_id = await milestone(tasks, task_id, due)
    before = await snapshot_holds_everything(notifications, open_deadlines=already + 2)  # the task's, the milestone's

    notifications.restart()
    after = await readiness(notifications)
    assert after["snapshot"] == "used", after
    assert after["events"] == 0, "nothing was appended to policy.events after the snapshot, so nothing is read"
    assert after["open_deadlines"] == before["open_deadlines"]

    await wait_for_kinds(receiver, secret, milestone_id, KINDS)
    ids = [headers["webhook-id"] for _, headers, _ in receiver.received]
    assert len(ids) == len(set(ids)) == 3, "the deadline known only from the snapshot alerts once each"


def other_code(document: dict[str, Any]) -> None:
    document["code_version"] = "0123456789abcdef"


def another_log(document: dict[str, Any]) -> None:
    positions = document["positions"]
    document["positions"] = [[partition, offset, "not-the-event-there"] for partition, offset, _ in positions]


def tampered(snapshot_file: Path, tamper: Callable[[dict[str, Any]], None], keys: Path | None) -> None:
    """The snapshot changed by ``tamper``; sealed again with the service's own key when ``keys``
    is given (a snapshot the service wrote itself, with other code or on another log)."""
    _, _, body = snapshot_file.read_bytes().partition(b"\n")
    document = orjson.loads(body)
    tamper(document)
    changed = orjson.dumps(document).decode()
    seal = "0" * 64
    if keys is not None:
        seal = SnapshotSeal(load_signing_key(keys / "notifications" / "signing-key.pem", create=False)).document(
            changed
        )
    snapshot_file.write_bytes(SEALED + seal.encode() + b"\n" + changed.encode())


@pytest.mark.parametrize(
    ("tamper", "reseal", "reason"),
    [
        (other_code, True, "written by other code"),
        (another_log, True, "is not not-the-event-there"),
        (other_code, False, "its seal does not hold"),
    ],
)
async def test_a_snapshot_the_log_does_not_bear_out_is_discarded_and_the_schedule_rebuilt(
    tasks: ServiceProcess,
    notifications: ServiceProcess,
    snapshot_file: Path,
    tamper: Callable[[dict[str, Any]], None],
    reseal: bool,
    reason: str,
) -> None:
    already = (await readiness(notifications))["open_deadlines"]
    task_id = await new_task(tasks)
    await milestone(tasks, task_id, datetime.now(UTC) + timedelta(days=3))
    before = await snapshot_holds_everything(notifications, open_deadlines=already + 2)

    notifications.stop()
    tampered(snapshot_file, tamper, Path(notifications.env["POLICYTRACK_KEYS_DIR"]) if reseal else None)
    notifications.start()

    after = await readiness(notifications)
    assert after["snapshot"].startswith("discarded: ") and reason in after["snapshot"], after
    assert after["events"] == before["events"], "the whole of policy.events was read again"
    assert after["open_deadlines"] == before["open_deadlines"]
