"""The one encoder and decoder of events: the CloudEvents Kafka protocol binding, binary mode.

Attributes travel as ``ce_*`` headers, ``data`` as the JSON value, the aggregate id as the
key. Decoding never raises: a record that is not a valid event yields a ``DecodeFailure``
that the caller sends to the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson
from pydantic import ValidationError

from shared.contract.catalog import CATALOG
from shared.contract.envelope import JSON, CloudEvent

Headers = tuple[tuple[str, bytes], ...]

HEADER_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
STRUCTURED = "application/cloudevents+json"
_ATTRIBUTES = (
    "specversion", "id", "source", "type", "time", "subject", "actor", "actordept",
    "aggregateversion", "correlationid", "causationid", "idempotencykey",
)  # fmt: skip
_HEADER_TO_ATTRIBUTE = {HEADER_PREFIX + name: name for name in _ATTRIBUTES}
_NOT_HEADERS = {"data", "datacontenttype"}
_JSON_BYTES = JSON.encode()
_JSON_CONTENT_TYPE = (CONTENT_TYPE, _JSON_BYTES)


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
    key: bytes | None
    value: bytes | None
    headers: Headers


def encode(event: CloudEvent) -> EncodedEvent:
    attributes = event.__pydantic_serializer__.to_python(event, mode="json", exclude_none=True, exclude=_NOT_HEADERS)
    return EncodedEvent(
        topic=event.topic,
        key=event.subject.encode(),
        value=event.data.__pydantic_serializer__.to_json(event.data),
        headers=(_JSON_CONTENT_TYPE, *((HEADER_PREFIX + name, str(value).encode()) for name, value in attributes.items())),
    )


def decode(key: bytes | None, value: bytes | None, headers: Headers) -> CloudEvent | DecodeFailure:
    headers = tuple(headers)
    try:
        attributes = {_HEADER_TO_ATTRIBUTE[name]: raw.decode() for name, raw in headers if name in _HEADER_TO_ATTRIBUTE}
    except UnicodeDecodeError as error:
        return DecodeFailure(f"header is not UTF-8: {error}", key, value, headers)
    reason = _envelope_problem(attributes, headers, value)
    if reason is None:
        try:
            data = CATALOG[attributes["type"]].model_validate_json(value)  # type: ignore[arg-type]
            attributes["data"] = data
            event = CloudEvent.model_validate(attributes)
        except ValidationError as error:
            reason = _describe(error)
        else:
            if key is None or key == event.subject.encode():
                return event
            reason = f"record key {key!r} is not the event's subject {event.subject!r}"
    return DecodeFailure(reason, key, value, headers)


def _envelope_problem(attributes: dict[str, str], headers: Headers, value: bytes | None) -> str | None:
    if "specversion" not in attributes:
        return "not a CloudEvent: no ce_specversion header"
    for name, raw in headers:
        if name == CONTENT_TYPE:
            if raw.split(b";")[0].strip() != _JSON_BYTES:
                return f"unsupported content-type {raw.decode(errors='replace')!r}"
            break
    if attributes.get("type") not in CATALOG:
        return f"unknown event type {attributes.get('type')!r}"
    if value is None:
        return "record has no value (data)"
    return None


def decode_record(record: ConsumedRecord) -> CloudEvent | DecodeFailure:
    return decode(record.key, record.value, tuple(record.headers))


def to_structured(event: CloudEvent) -> bytes:
    """The structured-mode JSON form (``application/cloudevents+json``), as webhooks carry it."""
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def from_structured(body: bytes) -> CloudEvent | DecodeFailure:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return DecodeFailure(reason=f"not JSON: {error}", key=None, value=body, headers=())
    if not isinstance(document, dict):
        return DecodeFailure(reason="not a JSON object", key=None, value=body, headers=())
    data = document.pop("data", None)
    headers = tuple(
        (HEADER_PREFIX + name, str(value).encode()) for name, value in document.items() if name != "datacontenttype"
    )
    return decode(None, orjson.dumps(data), headers)


def _describe(error: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in e['loc']) or 'data'}: {e['msg']}" for e in error.errors()]
    return "invalid event: " + "; ".join(problems[:5])
