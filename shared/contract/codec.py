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
    headers = [(CONTENT_TYPE, JSON.encode())]
    for name in _ATTRIBUTES:
        value = getattr(event, name)
        if value is None:
            continue
        if name == "time":
            text = value.isoformat().replace("+00:00", "Z")
        else:
            text = str(value)
        headers.append((HEADER_PREFIX + name, text.encode()))
    return EncodedEvent(
        topic=event.topic,
        key=event.subject.encode(),
        value=event.data.__pydantic_serializer__.to_json(event.data),
        headers=tuple(headers),
    )


def decode(key: bytes | None, value: bytes | None, headers: Headers) -> CloudEvent | DecodeFailure:
    def failure(reason: str) -> DecodeFailure:
        return DecodeFailure(reason=reason, key=key, value=value, headers=tuple(headers))

    attributes: dict[str, str] = {}
    content_type = None
    try:
        for name, raw in headers:
            if name == CONTENT_TYPE:
                content_type = raw.decode()
            elif (attribute := _HEADER_TO_ATTRIBUTE.get(name)) is not None:
                attributes[attribute] = raw.decode()
    except UnicodeDecodeError as error:
        return failure(f"header is not UTF-8: {error}")
    if "specversion" not in attributes:
        return failure("not a CloudEvent: no ce_specversion header")
    if content_type is not None and content_type.split(";")[0].strip() != JSON:
        return failure(f"unsupported content-type {content_type!r}")
    data_class = CATALOG.get(attributes.get("type", ""))
    if data_class is None:
        return failure(f"unknown event type {attributes.get('type')!r}")
    if value is None:
        return failure("record has no value (data)")
    try:
        data = data_class.model_validate_json(value)
        event = CloudEvent.model_validate({**attributes, "data": data})
    except ValidationError as error:
        return failure(_describe(error))
    if key is not None and key != event.subject.encode():
        return failure(f"record key {key!r} is not the event's subject {event.subject!r}")
    return event


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
