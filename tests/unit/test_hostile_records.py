"""Whatever bytes and headers a record carries, decoding it never raises: the consumers that
read it either handle it or dead-letter it, and go on to the next record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.tasks.entrypoints.command_topic import CommandParser, CommandRecord
from shared.contract.catalog import CATALOG
from shared.contract.codec import DecodeFailure, decode, encode
from shared.contract.envelope import CloudEvent
from shared.contract.secrets import strip_secrets
from shared.provenance.keys import TrustStore
from tests.samples import sample_events

HEADER_NAMES = [
    f"ce_{name}"
    for name in (
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
    )
]
HEADER_NAMES += [
    "content-type",
    "command",
    "authorization",
    "correlationid",
    "idempotency-key",
    "if-match",
    "signature",
    "writer-proof",
    "actor",
    "actor-department",
    "signed-command",
]
parse_command_record = CommandParser(TrustStore(Path("/nonexistent/trust")))
"""A parser that trusts no key: every command it reads is unauthenticated, or malformed."""


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    topic: str = "policy.commands"
    partition: int = 0
    offset: int = 7
    timestamp: int = 0


header_values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.sampled_from([b"1.0", b"\xff\xfe", b"application/json", b"report_progress", *map(str.encode, CATALOG)]),
    st.text(max_size=40).map(str.encode),
)
headers = st.lists(
    st.tuples(st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=12)), header_values), max_size=14
)
values = st.one_of(st.none(), st.binary(max_size=200), st.sampled_from([b"{}", b"[]", b'{"task_id": "t-1"}', b"null"]))


@settings(max_examples=400, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=40)), value=values, headers=headers)
def test_decoding_any_record_gives_an_event_or_a_reason(
    key: bytes | None, value: bytes | None, headers: list[Any]
) -> None:
    decoded = decode(key, value, tuple(headers))
    assert isinstance(decoded, CloudEvent | DecodeFailure)
    if isinstance(decoded, DecodeFailure):
        assert decoded.reason and decoded.headers == tuple(headers)


@settings(max_examples=400, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=40)), value=values, headers=headers)
def test_parsing_any_command_record_gives_a_command_or_a_reason(
    key: bytes | None, value: bytes | None, headers: list[Any]
) -> None:
    parsed = parse_command_record(Record(key, value, headers))
    assert isinstance(parsed, CommandRecord | DecodeFailure)


def test_a_header_without_a_value_is_a_reason_not_a_crash() -> None:
    event = sample_events()[0]
    record = encode(event)
    for name in ("ce_type", "ce_id", "content-type"):
        hostile = tuple((n, None if n == name else v) for n, v in record.headers)
        failure = decode(record.key, record.value, hostile)
        assert isinstance(failure, DecodeFailure) and f"header {name} has no value" in failure.reason
    parsed = parse_command_record(Record(b"k", b"{}", [("command", None), ("authorization", b"Bearer x")]))
    assert isinstance(parsed, DecodeFailure) and "command has no value" in parsed.reason


def test_a_header_given_twice_is_refused_rather_than_guessed() -> None:
    record = encode(sample_events()[0])
    twice = (*record.headers, ("ce_actor", b"u-someone-else"))
    failure = decode(record.key, record.value, twice)
    assert isinstance(failure, DecodeFailure) and "ce_actor appears twice" in failure.reason
    parsed = parse_command_record(
        Record(
            b"k",
            b"{}",
            [("command", b"report_progress"), ("authorization", b"Bearer a"), ("Authorization", b"Bearer b")],
        )
    )
    assert isinstance(parsed, DecodeFailure) and "appears twice" in parsed.reason


def test_non_utf8_and_huge_headers_are_reasons() -> None:
    record = encode(sample_events()[0])
    bad = tuple((n, b"\xff\xfe" if n == "ce_subject" else v) for n, v in record.headers)
    assert "not UTF-8" in decode(record.key, record.value, bad).reason  # type: ignore[union-attr]
    huge = tuple((n, b"x" * 500_000 if n == "ce_id" else v) for n, v in record.headers)
    assert isinstance(decode(record.key, record.value, huge), DecodeFailure)


def test_if_match_on_the_command_topic_is_strict() -> None:
    body = orjson.dumps({"task_id": "t-1", "percent": 5})
    for header, expected in [(b'"7"', 7), (b'W/"7"', 7), (b"7", 7), (b"*", None)]:
        parsed = parse_command_record(Record(b"k", body, [("command", b"report_progress"), ("if-match", header)]))
        assert isinstance(parsed, CommandRecord) and parsed.if_match == expected, header
    for header in (b"9" * 5000, b"yesterday", b'"7', b"-1", b"0"):
        parsed = parse_command_record(Record(b"k", body, [("command", b"report_progress"), ("if-match", header)]))
        assert isinstance(parsed, DecodeFailure) and "if-match" in parsed.reason, header


def test_secret_headers_are_named_and_stripped() -> None:
    kept, removed = strip_secrets(
        [
            ("command", b"report_progress"),
            ("Authorization", b"Bearer abc"),
            ("Cookie", b"s=1"),
            ("Proxy-Authorization", b"Basic x"),
            ("x-api-token", b"t"),
            ("X-Client-Secret", b"s"),
            ("db_password", None),
            ("ce_id", b"e-1"),
        ]
    )
    assert kept == (("command", b"report_progress"), ("ce_id", b"e-1"))
    assert removed == (
        "Authorization",
        "Cookie",
        "Proxy-Authorization",
        "x-api-token",
        "X-Client-Secret",
        "db_password",
    )
