"""The event contract without I/O: the catalog, the envelope and the Kafka binary binding."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.contract.catalog import CATALOG, MilestoneScheduled, TaskProgressReported
from shared.contract.codec import (
    DecodeFailure,
    EncodedEvent,
    decode,
    decode_kept,
    encode,
    from_structured,
    to_structured,
)
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.topics import ALERTS, EVENTS
from tests.samples import PAYLOADS, sample_events

DESIGN_CATALOG = {
    "plan.approved",
    "plan.amended",
    "task.created",
    "task.assigned",
    "task.reassigned",
    "task.deadline_changed",
    "task.progress_reported",
    "task.completed",
    "task.cancelled",
    "milestone.scheduled",
    "milestone.met",
    "issue.reported",
    "issue.escalated",
    "issue.resolved",
    "approval.requested",
    "approval.granted",
    "approval.rejected",
    "evaluation.recorded",
    "alert.deadline_approaching",
    "alert.deadline_due",
    "alert.overdue",
    "alert.escalated",
    "alert.delivered",
    "alert.delivery_failed",
    "command.rejected",
    "subscription.created",
    "subscription.removed",
    "audit.checkpoint",
}


def test_catalog_covers_the_design_minimum() -> None:
    names = {event_type.removeprefix("org.policytrack.").rsplit(".v", 1)[0] for event_type in CATALOG}
    assert names >= DESIGN_CATALOG


def test_every_event_type_has_a_sample() -> None:
    assert set(PAYLOADS) == set(CATALOG.values())


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.type)
def test_every_event_type_round_trips_through_the_binary_binding(event: CloudEvent[Any]) -> None:
    record = encode(event)
    assert record.key == event.subject.encode()
    headers = dict(record.headers)
    assert headers["ce_type"] == event.type.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert decode(record.key, record.value, record.headers) == event


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.type)
def test_every_event_type_round_trips_in_structured_mode(event: CloudEvent[Any]) -> None:
    assert from_structured(to_structured(event)) == event


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.type)
def test_a_record_kept_as_written_reads_back_to_its_event(event: CloudEvent[Any]) -> None:
    record = encode(event)
    kept = decode_kept(record)
    assert not isinstance(kept, DecodeFailure)
    assert kept[0] == event
    assert from_structured(kept[1]) == event
    written, structured = orjson.loads(kept[1]), orjson.loads(to_structured(event))
    assert written.pop("data") == orjson.loads(record.value)  # the payload as the record has it
    assert written == {name: value for name, value in structured.items() if name != "data"}


def test_a_record_written_with_an_offset_is_kept_as_written_and_read_in_utc() -> None:
    event = sample_events()[0]
    record = encode(event)
    moment = event.time.astimezone(timezone(timedelta(hours=8))).isoformat().encode()
    headers = tuple((name, moment if name == "ce_time" else value) for name, value in record.headers)
    kept = decode_kept(replace(record, headers=headers))
    assert not isinstance(kept, DecodeFailure)
    assert orjson.loads(kept[1])["time"] == moment.decode()
    assert from_structured(kept[1]) == event


def test_what_is_kept_of_a_record_holds_memory_of_its_own_size() -> None:
    """Every event a rebuild takes is kept in its task's history (a million at a start): orjson's
    output held 4 KiB or more whatever its length."""
    records = [encode(event) for event in sample_events()] * 20
    tracemalloc.start()
    try:
        kept = [as_written(record) for record in records]
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    written = sum(map(len, kept))
    assert held < 1.2 * written + 100 * len(records), f"{held:,} bytes held for {written:,} bytes kept"


def as_written(record: EncodedEvent) -> bytes:
    kept = decode_kept(record)
    assert not isinstance(kept, DecodeFailure)
    return kept[1]


def test_alerts_and_subscriptions_travel_on_the_alerts_topic() -> None:
    topics = {event.type.split(".")[2]: encode(event).topic for event in sample_events()}
    assert topics["alert"] == ALERTS
    assert topics["subscription"] == ALERTS
    assert topics["task"] == EVENTS


def test_times_are_accepted_with_any_offset_and_kept_in_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    data = MilestoneScheduled(task_id="t-1", milestone_id="m-1", title="x", due=datetime(2027, 1, 1, 9, tzinfo=seoul))
    assert data.due == datetime(2027, 1, 1, 0, tzinfo=UTC)
    assert data.due.utcoffset() == timedelta(0)
    assert b'"due":"2027-01-01T00:00:00Z"' in encode(new_event(data, actor="u")).value


def test_a_time_without_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        MilestoneScheduled(task_id="t-1", milestone_id="m-1", title="x", due=datetime(2027, 1, 1))


def test_envelope_type_and_subject_must_agree_with_the_data() -> None:
    event = new_event(TaskProgressReported(task_id="t-1", percent=5), actor="u")
    with pytest.raises(ValidationError, match="does not match"):
        CloudEvent.model_validate({**event.model_dump(), "data": event.data, "subject": "t-2"})
    with pytest.raises(ValidationError, match="does not match"):
        CloudEvent.model_validate(
            {**event.model_dump(), "data": event.data, "type": "org.policytrack.task.completed.v1"}
        )


def _good_record() -> tuple[bytes, bytes, tuple[tuple[str, bytes | None], ...]]:
    record = encode(new_event(TaskProgressReported(task_id="t-1", percent=5), actor="u"))
    return record.key, record.value, record.headers


def _replace_header(headers: tuple[Any, ...], name: str, value: bytes | None) -> tuple[Any, ...]:
    kept = tuple(h for h in headers if h[0] != name)
    return kept if value is None else (*kept, (name, value))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda k, v, h: (k, v, ()), "no ce_specversion"),
        (lambda k, v, h: (k, v, _replace_header(h, "ce_type", b"org.policytrack.nope.v1")), "unknown event type"),
        (lambda k, v, h: (k, b"{not json", h), "invalid event"),
        (lambda k, v, h: (k, b'{"task_id": "t-1", "percent": 101}', h), "percent"),
        (lambda k, v, h: (k, b'{"task_id": "t-1", "percent": 5, "extra": 1}', h), "extra"),
        (lambda k, v, h: (k, None, h), "no value"),
        (lambda k, v, h: (b"t-9", v, h), "is not the event's subject"),
        (lambda k, v, h: (k, v, _replace_header(h, "ce_id", b"\xff\xfe")), "not UTF-8"),
        (lambda k, v, h: (k, v, _replace_header(h, "ce_time", b"yesterday")), "time"),
        (lambda k, v, h: (k, v, _replace_header(h, "ce_actor", None)), "actor"),
        (lambda k, v, h: (k, v, _replace_header(h, "content-type", b"application/xml")), "content-type"),
    ],
)
def test_a_record_that_is_not_a_valid_event_yields_a_failure_not_an_exception(
    mutate: Callable[..., tuple[bytes | None, bytes | None, tuple[Any, ...]]], reason: str
) -> None:
    key, value, headers = mutate(*_good_record())
    decoded = decode(key, value, headers)
    assert isinstance(decoded, DecodeFailure)
    assert reason in decoded.reason
    assert (decoded.key, decoded.value, decoded.headers) == (key, value, headers)


def test_unknown_extension_attributes_are_ignored_for_forward_compatibility() -> None:
    key, value, headers = _good_record()
    decoded = decode(key, value, (*headers, ("ce_traceparent", b"00-abc")))
    assert isinstance(decoded, CloudEvent)


def test_event_ids_are_uuids_that_sort_in_the_order_they_were_made() -> None:
    """The audit trail indexes event ids: ids made later sort later, so the index grows at its
    end rather than at random pages (version 7, RFC 9562)."""
    made = []
    for n in range(3):
        made.append(new_event(TaskProgressReported(task_id="t-1", percent=n), actor="u-jilin-1").id)
        started = datetime.now(UTC)
        while datetime.now(UTC) - started < timedelta(milliseconds=2):
            pass  # the next id's millisecond is a later one
    assert made == sorted(made)
    assert all(uuid.UUID(made_id).version == 7 and uuid.UUID(made_id).variant == uuid.RFC_4122 for made_id in made)
    assert len({new_event(TaskProgressReported(task_id="t-1", percent=1), actor="u").id for _ in range(1000)}) == 1000
