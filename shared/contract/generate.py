"""Generates the published contract from the models: a JSON Schema per event type and an
AsyncAPI 3.0 document of the four topics. ``python -m shared.contract.generate [DIR]``.

A test regenerates both and fails when the checked-in copies under ``contract/`` are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, create_model

from shared.contract.catalog import CATALOG, SUPERSEDED, EventData, full_type, short_type
from shared.contract.codec import HEADER_PREFIX
from shared.contract.envelope import CloudEvent
from shared.contract.topics import ALERTS, AUDIT, COMMANDS, DEADLETTER, EVENTS, TOPICS, TopicSpec
from shared.settings import PROJECT_ROOT

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMPONENT_REF = "#/components/schemas/{model}"


def event_json_schema(data_class: type[BaseModel], type_name: str | None = None) -> dict[str, Any]:
    """The structured-mode CloudEvent of one type: envelope attributes plus its ``data``.
    ``type_name``: the type of an earlier version's model (a current one knows its own)."""
    name = type_name or getattr(data_class, "event_type")  # noqa: B009  # a ClassVar of the current types
    model = create_model(
        data_class.__name__ + "Event",
        __base__=CloudEvent,
        __doc__=(data_class.__doc__ or f"A {name} event.").strip(),
        type=(Literal[name], name),  # type: ignore[arg-type]  # a Literal of a value known at run time
        data=(data_class, ...),
    )
    schema = model.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, "$id": f"urn:policytrack:schema:{name}", **schema}


def _channel_key(topic: str) -> str:
    return "".join(part.capitalize() for part in topic.split("."))


def _ce_headers_schema(data_class: type[EventData]) -> dict[str, Any]:
    envelope = CloudEvent.model_json_schema()["properties"]
    required = [name for name in CloudEvent.model_json_schema()["required"] if name not in ("data",)]
    properties: dict[str, Any] = {"content-type": {"type": "string", "const": "application/json"}}
    for name, prop in envelope.items():
        if name in ("data", "datacontenttype"):
            continue
        description = prop.get("description", f"CloudEvents attribute {name}")
        properties[HEADER_PREFIX + name] = {"type": "string", "description": description}
    properties[HEADER_PREFIX + "type"]["const"] = data_class.event_type
    return {
        "type": "object",
        "properties": properties,
        "required": [HEADER_PREFIX + name for name in required if name not in ("datacontenttype",)],
    }


def _event_message(event_type: str, data_class: type[EventData]) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": data_class.__name__,
        "summary": (data_class.__doc__ or event_type).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": _ce_headers_schema(data_class),
        "payload": {"$ref": COMPONENT_REF.format(model=data_class.__name__)},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"the aggregate id ({data_class.subject_field})"},
                "bindingVersion": "0.5.0",
            }
        },
    }


COMMAND_MESSAGE = {
    "name": "command",
    "title": "Command",
    "summary": "A command from a departmental system: the same body as the HTTP route it names.",
    "contentType": "application/json",
    "headers": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "the command's name, e.g. report_progress"},
            "authorization": {"type": "string", "description": "Bearer <JWT>"},
            "correlationid": {"type": "string", "description": "echoed in the events it yields"},
            "idempotency-key": {"type": "string", "description": "a retry with it gets the first answer"},
            "if-match": {"type": "string", "description": "the aggregate version the command expects"},
        },
        "required": ["command", "authorization"],
    },
    "payload": {"type": "object"},
}
DEAD_LETTER_MESSAGE = {
    "name": "dead_letter",
    "title": "DeadLetter",
    "summary": "A record no consumer could handle: its original key, bytes and headers (secrets removed), plus why.",
    "headers": {
        "type": "object",
        "properties": {
            f"dlq_{name}": {"type": "string", "description": description}
            for name, description in (
                ("reason", "why the record could not be handled"),
                ("topic", "where it was read"),
                ("partition", "where it was read"),
                ("offset", "where it was read"),
                ("consumer", "which consumer gave up on it"),
                ("time", "when, RFC 3339 UTC"),
                ("redacted", "names of the secret headers removed (authorization, cookie, ...)"),
                ("dropped", "the size and SHA-256 of a value too large to travel with its provenance"),
            )
        },
        "required": ["dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset"],
    },
    "payload": {"description": "the original record value, unchanged"},
}


def _messages() -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """Schemas, messages, and which messages travel on each topic."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {spec.name: [] for spec in TOPICS}
    for event_type, data_class in sorted(CATALOG.items()):
        payload = data_class.model_json_schema(ref_template=COMPONENT_REF)
        schemas.update(payload.pop("$defs", {}))
        schemas[data_class.__name__] = payload
        messages[data_class.__name__] = _event_message(event_type, data_class)
        by_topic[data_class.topic].append(data_class.__name__)
    messages["Command"], messages["DeadLetter"] = COMMAND_MESSAGE, DEAD_LETTER_MESSAGE
    by_topic[COMMANDS].append("Command")
    by_topic[DEADLETTER].append("DeadLetter")
    return schemas, messages, by_topic


def _channel(spec: TopicSpec, names: list[str]) -> dict[str, Any]:
    return {
        "address": spec.name,
        "description": spec.purpose,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "topicConfiguration": {
                    "retention.ms": int(spec.configs.get("retention.ms", "-1")),
                    "cleanup.policy": ["delete"],
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _operation(action: str, topic: str, summary: str, names: list[str]) -> dict[str, Any]:
    key = _channel_key(topic)
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{key}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{key}/messages/{name}"} for name in names],
    }


def asyncapi_document() -> dict[str, Any]:
    schemas, messages, by_topic = _messages()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "policytrack",
            "version": "1.0.0",
            "description": (
                "Events of the implementation of the Overall Plan for the China-South Korea (Changchun) "
                "International Cooperation Demonstration Zone. CloudEvents 1.0 in the Kafka protocol "
                "binding, binary mode: attributes as ce_* headers, data as the JSON value, key = aggregate id."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "deploy/kafka.sh"}},
        "channels": {_channel_key(spec.name): _channel(spec, by_topic[spec.name]) for spec in TOPICS},
        "operations": {
            "sendCommands": _operation("send", COMMANDS, "Departmental systems send commands", by_topic[COMMANDS]),
            "receiveEvents": _operation(
                "receive", EVENTS, "Services and auditors read the domain events", by_topic[EVENTS]
            ),
            "receiveAlerts": _operation("receive", ALERTS, "Subscribers and auditors read alerts", by_topic[ALERTS]),
            "receiveDeadLetters": _operation(
                "receive", DEADLETTER, "Operators and auditors read dead letters", by_topic[DEADLETTER]
            ),
            "receiveAuditRecords": _operation(
                "receive", AUDIT, "Auditors and witnesses read the trail's checkpoints and findings", by_topic[AUDIT]
            ),
        },
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def event_catalog() -> str:
    """docs/event-catalog.md: every event type, its topic, its aggregate and its fields."""
    lines = [
        "# Event catalog",
        "",
        "Generated from `shared/contract/catalog.py` by `make contract`; do not edit by hand.",
        "",
        "Every event is a CloudEvents 1.0 envelope (binary mode on Kafka: `ce_*` headers, JSON body, key = "
        "the aggregate id) with the extension attributes `actor`, `actordept`, `aggregateversion`, "
        "`correlationid`, `causationid` and `idempotencykey`.",
        "",
    ]
    for topic in TOPICS:
        lines += [f"## `{topic.name}`", "", topic.purpose, ""]
        for event_type, data_class in sorted(CATALOG.items()):
            if data_class.topic != topic.name:
                continue
            summary = (data_class.__doc__ or "").strip().splitlines()[0] if data_class.__doc__ else ""
            lines += [
                f"### `{event_type}`",
                "",
                *([summary, ""] if summary else []),
                f"Aggregate (subject and key): `{data_class.subject_field}`. Source: `{data_class.source}`.",
                "",
                "| field | type | required |",
                "| --- | --- | --- |",
            ]
            schema = data_class.model_json_schema()
            for name, prop in schema["properties"].items():
                kind = (
                    prop.get("type")
                    or prop.get("$ref", "").rsplit("/", 1)[-1]
                    or " or ".join(
                        option.get("type") or option.get("$ref", "").rsplit("/", 1)[-1]
                        for option in prop.get("anyOf", [])
                    )
                )
                lines.append(
                    f"| `{name}` | {kind}{' (' + prop['format'] + ')' if 'format' in prop else ''} | "
                    f"{'yes' if name in schema.get('required', ()) else 'no'} |"
                )
            lines.append("")
    lines += [
        "## Earlier versions still on the log",
        "",
        "Records of these types were written by earlier versions. Every reader checks one against its own "
        "version's schema and reads it through its upcaster as the current version; the trail keeps the "
        "record as it was written.",
        "",
    ]
    lines += [f"- `{old}`: read as `{full_type(short_type(old))}`" for old in sorted(SUPERSEDED)]
    lines.append("")
    return "\n".join(lines)


def render() -> dict[str, str]:
    """Every generated file, as path relative to the project root -> text."""
    files = {
        f"contract/schemas/{event_type}.json": json.dumps(event_json_schema(data_class), indent=2, sort_keys=True)
        + "\n"
        for event_type, data_class in CATALOG.items()
    } | {
        f"contract/schemas/{event_type}.json": json.dumps(
            event_json_schema(earlier.model, event_type), indent=2, sort_keys=True
        )
        + "\n"
        for event_type, earlier in SUPERSEDED.items()
    }
    files["contract/asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    files["docs/event-catalog.md"] = event_catalog()
    return files


def write(root: Path = PROJECT_ROOT) -> list[Path]:
    written = []
    schemas = root / "contract" / "schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    for stale in schemas.glob("*.json"):
        stale.unlink()
    for relative, text in render().items():
        path = root / relative
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT
    print(f"wrote {len(write(target))} files under {target}")
