"""Snapshots of the deadline schedule, so that a start reads only the domain events appended
since the last one instead of the whole history of ``policy.events``.

One JSON file (0600) beside the service's other local data: the open deadlines, what the
schedule knows of tasks and plans, the watched support requests, alerts decided but not yet
emitted, and per partition of ``policy.events`` the position it covers with the id of the event
just before it; sealed with the service's key over all of it. Never the only copy of anything:
which alerts were emitted and delivered, and the subscriptions, are always read again from
``policy.alerts``; a snapshot whose seal fails, written by other code, or whose positions the
log does not bear out is discarded and the schedule rebuilt.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from services.notifications.domain import schedule as schedule_module
from services.notifications.domain import support as support_module
from services.notifications.domain.schedule import Cadence, Deadline, Policy, Schedule, TaskInfo
from services.notifications.domain.support import SupportWatch, Watched
from shared.contract import catalog, envelope
from shared.contract.catalog import CATALOG, NOTICES, Notice
from shared.contract.codes import Department
from shared.contract.topics import EVENTS
from shared.kafka.snapshots import Claim, Positions, code_version
from shared.logging import get_logger
from shared.provenance.sealing import SnapshotSeal, create_private

log = get_logger(__name__)

CODE_VERSION = code_version(catalog, envelope, schedule_module, support_module, sys.modules[__name__])
"""Changes whenever the code that shapes the schedule or its snapshot does."""


class SnapshotUnreadable(Exception):
    """The snapshot's content is not what this code writes."""


@dataclass(frozen=True)
class Resumed:
    """What a snapshot gives back: the schedule, the alerts it still owed, where it stood."""

    schedule: Schedule
    pending: list[Notice]
    positions: Positions


ROWS_PER_PIECE = 4096
"""Deadlines encoded at a time by ``capture``."""


def capture(schedule: Schedule, pending: list[Notice], positions: Positions) -> list[bytes]:
    """The schedule at this moment, as the pieces of one JSON document: taken without yielding
    to the event loop, so the positions and the state they produced are one moment. Encoded whole,
    the document's rows and orjson's growing buffer took three times its size at once (a 48 MiB
    peak for the 16 MiB of 100,000 deadlines); a piece of deadlines at a time, about its size."""
    watch_times = schedule.watch_times()
    head = orjson.dumps(
        {
            "code_version": CODE_VERSION,
            "topic": EVENTS,
            "written_at": time.time(),
            "positions": [[partition, offset, event_id] for partition, (offset, event_id) in positions.items()],
        }
    )
    tail = orjson.dumps(
        {
            "tasks": schedule.tasks,
            "plans": schedule.plans,
            "cadences": {plan: [cadence.interval_months, cadence.since] for plan, cadence in schedule.cadences.items()},
            "support": list(schedule.support.watched.values()),
            "pending": [
                {"type": n.event_type, "data": n.__pydantic_serializer__.to_python(n, mode="json")} for n in pending
            ],
        }
    )
    # Rows, not objects: a hundred thousand deadlines read back in half the time.
    rows = (
        [d.task_id, d.milestone_id, d.title, d.due, d.known_since, d.departments, watch_times[key]]
        for key, d in schedule.deadlines.items()
    )
    pieces = [head[:-1] + b',"deadlines":[']
    while chunk := list(itertools.islice(rows, ROWS_PER_PIECE)):
        pieces.append((b"," if len(pieces) > 1 else b"") + orjson.dumps(chunk)[1:-1])
    pieces.append(b"]," + tail[1:])
    return pieces


SEALED = b"sealed "


class ScheduleSnapshots:
    """The snapshot file: its seal on the first line, the schedule as JSON after it."""

    def __init__(self, path: Path, seal: SnapshotSeal) -> None:
        self.path = path
        self._seal = seal

    def _document(self) -> dict[str, Any] | None:
        """The snapshot, if its seal holds; None when there is none; SnapshotUnreadable otherwise."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SnapshotUnreadable(f"the snapshot cannot be read: {error!r}") from error
        first, _, body = raw.partition(b"\n")
        if not first.startswith(SEALED) or not self._seal.holds_text(body, first[len(SEALED) :].decode()):
            raise SnapshotUnreadable("its seal does not hold (written by another key, or changed since)")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise SnapshotUnreadable(f"the snapshot is not JSON: {error}") from error
        if not isinstance(document, dict) or "code_version" not in document:
            raise SnapshotUnreadable("the snapshot is not a schedule")
        return document

    def claim(self) -> Claim | SnapshotUnreadable | None:
        """What the snapshot claims to cover, if its seal holds; None when there is none."""
        try:
            document = self._document()
        except SnapshotUnreadable as unreadable:
            return unreadable
        if document is None:
            return None
        try:
            return Claim(
                code_version=str(document["code_version"]),
                topic=str(document["topic"]),
                positions=_positions(document),
                written_at=float(document["written_at"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            log.warning("the schedule snapshot claims nothing readable", path=str(self.path), error=repr(error))
            return None

    def restore(self, policy: Policy) -> Resumed:
        document = self._document()
        if document is None:
            raise SnapshotUnreadable("the snapshot is gone or cannot be read")
        try:
            schedule = Schedule.resumed(
                policy,
                deadlines=[_deadline(*saved) for saved in document["deadlines"]],
                tasks={task_id: _task(saved) for task_id, saved in document["tasks"].items()},
                plans=dict(document["plans"]),
                support=SupportWatch({(w.request_id, w.department): w for w in map(_watched, document["support"])}),
                cadences={
                    plan: Cadence(interval, datetime.fromisoformat(since))
                    for plan, (interval, since) in document["cadences"].items()
                },
            )
            pending = [_notice(saved) for saved in document["pending"]]
            positions = _positions(document)
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotUnreadable(f"the snapshot cannot be read: {error!r}"[:500]) from error
        return Resumed(schedule, pending, positions)

    def save(self, captured: Sequence[bytes]) -> None:
        """The pieces ``capture`` made, whole or not at all, sealed: written beside the file (0600),
        synced, then renamed over it."""
        partial = self.path.with_name(self.path.name + ".partial")
        partial.unlink(missing_ok=True)
        create_private(partial)
        with partial.open("wb") as file:
            file.write(SEALED + self._seal.text_seal(captured).encode() + b"\n")
            file.writelines(captured)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(self.path)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _positions(document: dict[str, Any]) -> Positions:
    return {int(partition): (int(offset), str(event_id)) for partition, offset, event_id in document["positions"]}


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


_DEPARTMENTS = {department.value: department for department in Department}


def _departments(saved: list[str]) -> tuple[Department, ...]:
    return tuple(_DEPARTMENTS[code] for code in saved)


def _deadline(
    task_id: str, milestone_id: str | None, title: str, due: str, known_since: str, departments: list[str], at: str
) -> tuple[Deadline, datetime]:
    moment = datetime.fromisoformat
    deadline = Deadline(task_id, milestone_id, title, moment(due), moment(known_since), _departments(departments))
    return deadline, moment(at)


def _task(saved: dict[str, Any]) -> TaskInfo:
    return TaskInfo(saved["title"], _departments(saved["departments"]), saved["open"], _moment(saved["due"]))


def _watched(saved: dict[str, Any]) -> Watched:
    return Watched(
        request_id=saved["request_id"],
        task_id=saved["task_id"],
        department=Department(saved["department"]),
        title=saved["title"],
        acknowledge_by=datetime.fromisoformat(saved["acknowledge_by"]),
        answer_by=datetime.fromisoformat(saved["answer_by"]),
        acknowledged=saved["acknowledged"],
        answered=saved["answered"],
    )


def _notice(saved: dict[str, Any]) -> Notice:
    data = CATALOG[saved["type"]].model_validate(saved["data"])
    if not isinstance(data, NOTICES):
        raise ValueError(f"a pending alert of type {saved['type']!r} is not an alert")
    return data
