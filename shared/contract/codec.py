"""The one encoder and decoder of events: the CloudEvents Kafka protocol binding, binary mode.

Attributes travel as ``ce_*`` headers, ``data`` as the JSON value, the aggregate id as the
key. Decoding never raises: a record that is not a valid event yields a ``DecodeFailure``
that the caller sends to the dead-letter topic. A record of an earlier version of its type is
checked by that version's model and read through its upcaster: every reader sees the current
version (``type`` included); the record itself, as the trail keeps it, is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from shared.contract.catalog import CATALOG, SUPERSEDED, EventData
from shared.contract.envelope import JSON, AnyEvent, CloudEvent
from shared.contract.mirror import Mirror, Refused
from shared.kept import kept
from shared.provenance.seals import PROOF_HEADER

Headers = tuple[tuple[str, bytes | None], ...]
"""Kafka record headers: a header may have no value."""

HEADER_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
STRUCTURED = "application/cloudevents+json"
_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "actor",
    "actordept",
    "aggregateversion",
    "correlationid",
    "causationid",
    "idempotencykey",
    "requestdigest",
    "signedcommand",
)
HEADER_TO_ATTRIBUTE = {HEADER_PREFIX + name: name for name in _ATTRIBUTES}
"""The headers that carry the envelope's attributes, each to its attribute: the only ``ce_``
headers read (Kafka lets a writer add others, with any bytes or none)."""
_NOT_HEADERS = {"data", "datacontenttype"}
_JSON_BYTES = JSON.encode()
_JSON_CONTENT_TYPE = (CONTENT_TYPE, _JSON_BYTES)
_ENVELOPE = Mirror(CloudEvent, without=frozenset({"data"}))
"""The envelope's checks in C, for the attributes of a record of our own log."""
_SET_BY_THE_DECODER = frozenset({"type", "data"})


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a record is not a valid event, with everything needed to dead-letter it as it was."""

    reason: str
    key: bytes | None
    value: bytes | None
    headers: Headers


class ConsumedRecord(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


def encode(event: AnyEvent) -> EncodedEvent:
    attributes = event.__pydantic_serializer__.to_python(event, mode="json", exclude_none=True, exclude=_NOT_HEADERS)
    return EncodedEvent(
        topic=event.topic,
        key=event.subject.encode(),
        value=event.data.__pydantic_serializer__.to_json(event.data),
        headers=(
            _JSON_CONTENT_TYPE,
            *((HEADER_PREFIX + name, str(value).encode()) for name, value in attributes.items()),
        ),
    )


def decode(key: bytes | None, value: bytes | None, headers: Headers) -> AnyEvent | DecodeFailure:
    decoded = _decoded(key, value, headers)
    return decoded if isinstance(decoded, DecodeFailure) else decoded[0]


def decode_kept(record: ConsumedRecord) -> tuple[AnyEvent, bytes] | DecodeFailure:
    """The record's event, and the record in structured mode as written: its attributes' text and
    its value, not serialized again from the event. ``from_structured`` reads it back to the same
    event; it is what a reader that keeps every event keeps (the tasks service's history), for
    less than half of what ``to_structured`` costs (docs/performance.md)."""
    decoded = _decoded(record.key, record.value, record.headers)
    if isinstance(decoded, DecodeFailure):
        return decoded
    event, attributes = decoded
    return event, _as_written(attributes, record.value or b"null", event.aggregateversion)


def _decoded(
    key: bytes | None, value: bytes | None, headers: Headers
) -> tuple[AnyEvent, dict[str, str]] | DecodeFailure:
    headers = tuple(headers)
    attributes, problem = _read_headers(headers)
    reason = problem or _envelope_problem(attributes, value)
    if reason is None:
        checked = _checked(key, value or b"", attributes)
        if not isinstance(checked, str):
            return checked, attributes
        reason = checked
    return DecodeFailure(reason, key, value, headers)


def _as_written(attributes: dict[str, str], value: bytes, aggregateversion: int | None) -> bytes:
    """A checked record's structured JSON from its attributes' text and its value (the payload's
    JSON, checked by its model): the one number among the attributes written as a number."""
    document: dict[str, object] = {**attributes, "datacontenttype": JSON, "data": orjson.Fragment(value)}
    if aggregateversion is not None:
        document["aggregateversion"] = aggregateversion
    return kept(orjson.dumps(document))


def _checked(key: bytes | None, value: bytes, attributes: dict[str, str], *, mirror: bool = True) -> AnyEvent | str:
    """The event, or why it is not one: its payload checked by its model, its envelope by the
    envelope's mirror when that accepts it (``mirror``), else by its model, which names the field."""
    try:
        data = _data(attributes["type"], value)
        event = (mirror and _mirrored(attributes, data)) or CloudEvent.model_validate(
            {**attributes, "type": data.event_type, "data": data}
        )
    except ValidationError as error:
        return _describe(error)
    if key is None or key == event.subject.encode():
        return event
    return f"record key {key!r} is not the event's subject {event.subject!r}"


def _mirrored(attributes: dict[str, str], data: EventData) -> AnyEvent | None:
    """The event of checked ``data`` whose envelope the envelope's mirror accepts; None when it
    refuses it."""
    try:
        values = _ENVELOPE.values(attributes)
        values["type"] = data.event_type
        values["data"] = data
        given = attributes.keys() | _SET_BY_THE_DECODER
        return _ENVELOPE.build(values, given)  # type: ignore[return-value]  # the mirror builds its model's class
    except Refused:
        return None


def _data(type_: str, value: bytes) -> EventData:
    if (earlier := SUPERSEDED.get(type_)) is not None:
        return earlier.upcast(earlier.model.model_validate_json(value))
    return CATALOG[type_].model_validate_json(value)


def _read_headers(headers: Headers) -> tuple[dict[str, str], str | None]:
    """The CloudEvents attributes the headers carry, or why they carry none that can be trusted:
    a header without a value (legal in Kafka), one that is not UTF-8, or one given twice."""
    # Headers as our writers write them (our content type first, then attributes alone, each
    # once, in UTF-8, and the writer's proof last) are read by one comprehension, at 0.8-0.9 of
    # the loop's cost (docs/performance.md); any others, and every problem, by the loop, which
    # says what is wrong.
    if headers and headers[0] == _JSON_CONTENT_TYPE:
        written = headers[1:-1] if headers[-1][0] == PROOF_HEADER else headers[1:]
        try:
            attributes = {HEADER_TO_ATTRIBUTE[name]: raw.decode() for name, raw in written}  # type: ignore[union-attr]  # a header without a value is left to the loop
        except (KeyError, AttributeError, UnicodeDecodeError):
            pass
        else:
            if len(attributes) == len(written):
                return attributes, None
    return _read_headers_one_by_one(headers)


def _read_headers_one_by_one(headers: Headers) -> tuple[dict[str, str], str | None]:
    attributes: dict[str, str] = {}
    content_type: bytes | None = None
    for name, raw in headers:
        attribute = HEADER_TO_ATTRIBUTE.get(name)
        if attribute is None and name != CONTENT_TYPE:
            continue
        if raw is None:
            return attributes, f"header {name} has no value"
        if attribute is None:
            if content_type is not None:
                return attributes, f"header {name} appears twice"
            content_type = raw
            continue
        if attribute in attributes:
            return attributes, f"header {name} appears twice"
        try:
            attributes[attribute] = raw.decode()
        except UnicodeDecodeError as error:
            return attributes, f"header {name} is not UTF-8: {error}"
    if content_type is not None and content_type.split(b";")[0].strip() != _JSON_BYTES:
        return attributes, f"unsupported content-type {content_type.decode(errors='replace')!r}"
    return attributes, None


def _envelope_problem(attributes: dict[str, str], value: bytes | None) -> str | None:
    if "specversion" not in attributes:
        return "not a CloudEvent: no ce_specversion header"
    if attributes.get("type") not in CATALOG and attributes.get("type") not in SUPERSEDED:
        return f"unknown event type {attributes.get('type')!r}"
    if value is None:
        return "record has no value (data)"
    return None


def header(headers: Headers, name: str) -> str | None:
    """The text of the header ``name``, if the record has it with a value."""
    for key, value in headers:
        if key == name and value is not None:
            return bytes(value).decode(errors="replace")
    return None


def decode_record(record: ConsumedRecord) -> AnyEvent | DecodeFailure:
    return decode(record.key, record.value, tuple(record.headers))


def to_structured(event: AnyEvent) -> bytes:
    """The structured-mode JSON form (``application/cloudevents+json``), as webhooks carry it."""
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def from_structured(body: bytes) -> AnyEvent | DecodeFailure:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return DecodeFailure(reason=f"not JSON: {error}", key=None, value=body, headers=())
    if not isinstance(document, dict):
        return DecodeFailure(reason="not a JSON object", key=None, value=body, headers=())
    return from_document(document)


def from_document(document: Mapping[str, Any]) -> AnyEvent | DecodeFailure:
    """The event of a structured-mode CloudEvent already parsed from JSON (as an API answer holds it)."""
    headers = tuple(
        (HEADER_PREFIX + name, str(value).encode()) for name, value in document.items() if name not in _NOT_HEADERS
    )
    return decode(None, orjson.dumps(document.get("data")), headers)


def _describe(error: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in e['loc']) or 'data'}: {e['msg']}" for e in error.errors()]
    return "invalid event: " + "; ".join(problems[:5])
