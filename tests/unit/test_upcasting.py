"""Contract evolution: ``plan.approved`` gained a version 2 (the approving document's number).
A version-1 record, kept here as the tasks service wrote it, is checked by version 1's own
schema and read by every reader as version 2; the trail keeps it as it was written."""

from __future__ import annotations

from pathlib import Path

import orjson

from services.audit.adapters.chaining import derive
from shared.contract import catalog as c
from shared.contract.codec import DecodeFailure, decode, decode_kept, from_structured
from shared.contract.envelope import CloudEvent
from shared.domain.projection import Projection

FIXTURE = Path(__file__).parent.parent / "fixtures" / "plan_approved_v1.json"


def v1_record(**data_changes: object) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    saved = orjson.loads(FIXTURE.read_bytes())
    value = orjson.dumps({**orjson.loads(saved["value"]), **data_changes}) if data_changes else saved["value"].encode()
    return saved["key"].encode(), value, tuple((name, text.encode()) for name, text in saved["headers"])


def test_a_version_1_record_is_read_as_version_2() -> None:
    event = decode(*v1_record())
    assert isinstance(event, CloudEvent) and isinstance(event.data, c.PlanApproved)
    assert event.type == c.PlanApproved.event_type == "org.policytrack.plan.approved.v2"
    assert event.data.title == "中韩（长春）国际合作示范区总体方案" and event.data.evaluation_interval_months == 6
    assert event.data.document_number is None, "version 1 had no document number"


def test_version_1_is_still_checked_by_its_own_schema() -> None:
    for changes in ({"document_number": "国函〔2020〕111号"}, {"title": ""}):
        refused = decode(*v1_record(**changes))
        assert isinstance(refused, DecodeFailure), changes


def test_the_trail_keeps_the_type_the_record_was_written_as_and_replay_reads_it() -> None:
    key, value, headers = v1_record()

    class Record:
        def __init__(self) -> None:
            self.key, self.value, self.headers = key, value, headers

    assert derive(Record())["event_type"] == "org.policytrack.plan.approved.v1"  # type: ignore[arg-type]
    event = decode(key, value, headers)
    assert isinstance(event, CloudEvent)
    projection = Projection()
    assert projection.apply(event)
    plan = projection.plan(key.decode())
    assert plan is not None and plan.title == "中韩（长春）国际合作示范区总体方案" and plan.document_number is None


def test_the_short_name_means_every_version_and_the_current_one_is_written() -> None:
    assert c.full_type("plan.approved") == "org.policytrack.plan.approved.v2"
    assert c.versions_of(c.full_type("plan.approved")) == (
        "org.policytrack.plan.approved.v2",
        "org.policytrack.plan.approved.v1",
    )


def test_a_version_1_record_kept_as_written_reads_back_as_version_2() -> None:
    """The tasks service keeps each event of a task's history as its record was written."""

    class Record:
        key, value, headers = v1_record()

    kept = decode_kept(Record())
    assert not isinstance(kept, DecodeFailure)
    assert orjson.loads(kept[1])["type"] == "org.policytrack.plan.approved.v1"
    assert from_structured(kept[1]) == kept[0] == decode(*v1_record())
