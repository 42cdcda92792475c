"""What reading one record of our own log costs, step by step, in µs per record (no broker):
parsing the JSON alone is the floor; then the headers, the payload's validation from bytes, the
envelope's validation, and the whole decode: by the pydantic models alone (before), as every
reader runs it (the envelope's msgspec mirror), and the same checks into msgspec Structs (the
design in which readers would get Structs, not models), once with the envelope's values made as
the model holds them and once with the envelope as msgspec reads it. Then what folding one event
into its task's state costs, and the state's copy in three designs (issue 31, item 2); and the
two together, a rebuild's work on a record after the writer's proof, today and with Structs for
both the events and the state (items 1 and 2 as one design).

    .venv/bin/python -m bench.decode [--records 100000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson

from bench.results import Results, Row, scaled
from shared.contract.catalog import CATALOG, TaskCreated, TaskProgressReported
from shared.contract.codec import _ENVELOPE, Headers, _checked, _read_headers, decode, encode
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import AnyEvent, CloudEvent, new_event
from shared.domain.evolve import evolve
from shared.domain.health import TREND_WINDOW
from shared.domain.projection import Projection
from shared.domain.state import Task, replaced
from shared.process import tune_interpreter


def progress_report(n: int) -> AnyEvent:
    """The ``n``-th event of these benchmarks: a progress report on one of 1,000 tasks."""
    return new_event(
        TaskProgressReported(task_id=f"task-{n % 1000}", percent=n % 101, note="site works on schedule"),
        actor="u-jilin-1",
        actordept=Department.JILIN,
        aggregateversion=n + 1,
    )


def records(count: int) -> list[tuple[bytes, bytes, tuple[tuple[str, bytes | None], ...]]]:
    encoded = [encode(progress_report(n)) for n in range(count)]
    return [(e.key, e.value, e.headers) for e in encoded]


def per_record(step: Callable[[Any], object], inputs: list[Any], rounds: int = 3) -> float:
    """The best of ``rounds`` passes, in µs per record."""
    return alternating({"": step}, inputs, rounds)[""]


def alternating(designs: Mapping[str, Callable[[Any], object]], inputs: list[Any], rounds: int) -> dict[str, float]:
    """Each design's best of ``rounds`` passes, in µs per record, the designs taking turns in every
    round: this machine's speed drifts by minutes, and designs timed one after another would
    compare the drift as well."""
    best = dict.fromkeys(designs, float("inf"))
    for _ in range(rounds):
        for name, step in designs.items():
            started = time.perf_counter()
            for item in inputs:
                step(item)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: seconds / len(inputs) * 1e6 for name, seconds in best.items()}


def _by_models(key: bytes, value: bytes, headers: Headers) -> object:
    attributes, _ = _read_headers(headers)
    return _checked(key, value, attributes, mirror=False)


class _EvidenceStruct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+\Z")]
    media_type: str
    size: Annotated[int, msgspec.Meta(ge=1)]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]


class _ProgressStruct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``task.progress_reported`` with its model's checks, as a Struct: the design in which readers
    get Structs, not pydantic models."""

    task_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")]
    percent: Annotated[int, msgspec.Meta(ge=0, le=100)]
    note: Annotated[str, msgspec.Meta(max_length=20_000)] = ""
    evidence: Annotated[tuple[_EvidenceStruct, ...], msgspec.Meta(max_length=10)] = ()


_progress = msgspec.json.Decoder(_ProgressStruct)


def _structs_only(key: bytes, value: bytes, headers: Headers) -> tuple[dict[str, Any], _ProgressStruct]:
    """The other design: the same checks, and readers get Structs (no pydantic instance is built)."""
    attributes, _ = _read_headers(headers)
    envelope = _ENVELOPE.values(attributes)
    data = _progress.decode(value)
    if key != data.task_id.encode() or envelope["subject"] != data.task_id:
        raise ValueError("subject")
    return envelope, data


_CHECKED_WHERE_READ = {name: convert for name, convert in _ENVELOPE._typed if convert is not None}
"""The envelope's moment and number, which its mirror reads as given and as text and the model's
values check (a moment within the calendar, in UTC; a number written plainly, within bounds)."""
assert _CHECKED_WHERE_READ.keys() == {"time", "aggregateversion"}, "another field to check where it is read"
_IN_UTC, _VERSION = _CHECKED_WHERE_READ["time"], _CHECKED_WHERE_READ["aggregateversion"]


def _structs_as_read(key: bytes, value: bytes, headers: Headers) -> tuple[Any, int | None, datetime, _ProgressStruct]:
    """A third design: readers take the envelope as msgspec reads it (the mirror's Struct, no dict
    of values) and the payload's Struct, with the same checks (``_progress_as_read``). (A moment
    written with more than six digits of a second is read by msgspec's rule, not left to the
    model: there is none here.)"""
    attributes, problem = _read_headers(headers)
    if problem or "specversion" not in attributes:
        raise ValueError(problem or "not a CloudEvent")
    return _progress_as_read(key, value, attributes)


def _progress_as_read(
    key: bytes | None, value: bytes, attributes: dict[str, str]
) -> tuple[Any, int | None, datetime, _ProgressStruct]:
    """A progress report's envelope as msgspec reads it, its version and moment checked where they
    are read, and its payload's Struct, type and subject checked against the payload."""
    envelope: Any = msgspec.convert(attributes, _ENVELOPE.struct)  # the mirror is made at import
    version = None if envelope.aggregateversion is None else _VERSION(envelope.aggregateversion)
    moment = _IN_UTC(envelope.time)
    data = _progress.decode(value)
    if (
        envelope.type != TaskProgressReported.event_type
        or key != data.task_id.encode()
        or envelope.subject != data.task_id
    ):
        raise ValueError("type or subject")
    return envelope, version, moment, data


class _PointStruct(msgspec.Struct, frozen=True):
    at: datetime
    percent: int


_TaskStruct = msgspec.defstruct(
    "TaskStruct",
    [(name, Any) if info.is_required() else (name, Any, info.default) for name, info in Task.model_fields.items()],
    frozen=True,
)
"""The task's state as a Struct of the same fields: the design of issue 31, item 2."""


def _fold_struct(
    states: dict[str, Any], subject: str, version: int | None, moment: datetime, data: _ProgressStruct
) -> None:
    """``evolve`` of a progress report (``_progress_reported``) into a Struct state, with the
    projection's check of the aggregate's version."""
    task = states[subject]
    if version is not None and version <= task.version:
        return
    point = _PointStruct(moment, data.percent)
    states[subject] = msgspec.structs.replace(
        task,
        percent=data.percent,
        progress_note=data.note,
        recent_progress=(*task.recent_progress, point)[-TREND_WINDOW:],
        evidence=(*task.evidence, *data.evidence),
        version=task.version + 1,
        updated_at=moment,
    )


def _created(task_id: str) -> AnyEvent:
    """The event that starts a task of these benchmarks."""
    due = datetime(2027, 12, 31, tzinfo=UTC)
    data = TaskCreated(task_id=task_id, plan_id="plan", title="t", field=CooperationField.TRADE, due=due)
    return new_event(data, actor="u-sc", aggregateversion=1)


def decode_and_fold(results: Results, made: list[tuple[bytes, bytes, Headers]]) -> None:
    """A rebuild's work on one record after the writer's proof (the same in both designs): decoded
    and folded into its task's state, today and with Structs for the events and the state."""
    tasks = sorted({key.decode() for key, _, _ in made})
    seed = {task_id: evolve(None, _created(task_id)) for task_id in tasks}
    struct_seed = {task_id: _TaskStruct(**dict(task)) for task_id, task in seed.items()}

    def today(records: list[tuple[bytes, bytes, Headers]]) -> dict[str, Any]:
        projection = Projection(aggregates=dict(seed))
        for record in records:
            event = decode(*record)
            assert isinstance(event, CloudEvent)
            projection.apply(event)
        return dict(projection.aggregates)

    def with_structs(records: list[tuple[bytes, bytes, Headers]]) -> dict[str, Any]:
        states = dict(struct_seed)
        for record in records:
            envelope, version, moment, data = _structs_as_read(*record)
            _fold_struct(states, envelope.subject, version, moment, data)
        return states

    def told(state: Any) -> tuple[Any, ...]:
        return state.version, state.updated_at, state.percent, [(p.at, p.percent) for p in state.recent_progress]

    assert {t: told(s) for t, s in today(made).items()} == {t: told(s) for t, s in with_structs(made).items()}

    print(
        f"\ndecoding and folding {len(made):,} records into {len(tasks):,} tasks, µs per record (best of 5, in turns):"
    )
    both = alternating({"today": today, "structs": with_structs}, [made], rounds=5)
    now, structs = both["today"] / len(made), both["structs"] / len(made)
    results.add(Row("decode and fold, as the rebuild does (models, the envelope's mirror)", now, "µs"))
    results.add(Row("decode and fold into Structs: events and state (issue 31, items 1-2)", structs, "µs", now))


def main(count: int) -> None:
    made = records(count)
    attributes = [_read_headers(headers)[0] for _, _, headers in made]
    payloads = [
        CATALOG[a["type"]].model_validate_json(value) for a, (_, value, _) in zip(attributes, made, strict=True)
    ]
    results = Results("decode")
    print(
        f"decoding {count:,} records of our own log, µs per record (best of 3; the whole decode's "
        "four designs taking turns, best of 5):"
    )
    floor = per_record(lambda r: orjson.loads(r[1]), made)
    results.add(Row("JSON parse of the value alone (the floor)", floor, "µs"))
    results.add(Row("reading the ce_* headers", per_record(lambda r: _read_headers(r[2]), made), "µs"))
    validate = per_record(lambda r: TaskProgressReported.model_validate_json(r[1]), made)
    results.add(Row("payload validated from bytes (pydantic-core)", validate, "µs", baseline=floor))
    pairs = list(zip(attributes, payloads, strict=True))
    envelope = per_record(lambda p: CloudEvent.model_validate({**p[0], "data": p[1]}), pairs)
    results.add(Row("envelope validated (attributes + type/subject check)", envelope, "µs"))
    whole_designs = {
        "models": lambda r: _by_models(*r),
        "mirrors": lambda r: decode(*r),
        "structs": lambda r: _structs_only(*r),
        "as read": lambda r: _structs_as_read(*r),
    }
    designs = alternating(whole_designs, made, rounds=5)
    by_models, whole, structs, as_read = (designs[name] for name in whole_designs)
    results.add(Row("whole decode by the pydantic models alone (before the mirrors)", by_models, "µs"))
    results.add(
        Row(
            "whole decode, as every reader runs it (msgspec mirrors)",
            whole,
            "µs",
            baseline=by_models,
            target=4,
            target_of="value",
            lower_is_better=True,
        )
    )
    results.add(Row("the same checks into msgspec Structs, no pydantic instances", structs, "µs", baseline=by_models))
    results.add(Row("the same checks, readers taking the envelope as msgspec reads it", as_read, "µs", baseline=whole))
    results.note(f"{1e6 / whole:,.0f} records/s on one core through the whole decode")
    fold(results, count)
    decode_and_fold(results, made)
    results.save()


def fold(results: Results, count: int) -> None:
    """What folding one event into its task's state costs, as the rebuild folds it, and the
    copy of the state it makes, in three designs of the same fields with the same change."""
    tasks = 1000
    due = datetime(2027, 12, 31, tzinfo=UTC)
    created = [_created(f"task-{t}") for t in range(tasks)]
    reports = [
        new_event(
            TaskProgressReported(task_id=f"task-{n % tasks}", percent=n % 101, note="weekly"),
            actor="u-jilin",
            aggregateversion=n // tasks + 2,
        )
        for n in range(count)
    ]
    print(f"\nfolding {count:,} progress reports into {tasks:,} tasks, µs per event (best of 3):")

    def folded(events: list[AnyEvent]) -> None:
        projection = Projection()
        for event in (*created, *events):
            projection.apply(event)

    apply = per_record(folded, [reports]) / (len(created) + len(reports))
    results.add(Row("Projection.apply of one event, as the rebuild folds it", apply, "µs"))
    task = evolve(None, created[0])
    change = {"percent": 40, "progress_note": "weekly", "version": 2, "updated_at": due}
    struct = _TaskStruct(**dict(task))
    copies = alternating(
        {
            "model_copy": lambda _: task.model_copy(update=change),
            "replaced": lambda _: replaced(task, change),
            "struct": lambda _: msgspec.structs.replace(struct, **change),
        },
        reports,
        rounds=5,
    )
    copied, ours, structs = copies["model_copy"], copies["replaced"], copies["struct"]
    results.add(Row("the state's copy: pydantic model_copy(update=...) (before)", copied, "µs"))
    results.add(Row("the state's copy: replaced() (now)", ours, "µs", baseline=copied))
    results.add(
        Row("the state's copy: a msgspec Struct of the same fields (structs.replace)", structs, "µs", baseline=copied)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=scaled(200_000, 30_000))
    tune_interpreter()
    main(parser.parse_args().records)
