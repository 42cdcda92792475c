"""The envelope's msgspec mirror checks our own log's records as the pydantic model does: whatever
the mirror accepts, the model accepts as the same event; what it refuses goes to the model, which
says why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contract import codec
from shared.contract.codec import _ENVELOPE as ENVELOPE
from shared.contract.codec import _checked, _data, _mirrored, _read_headers, _read_headers_one_by_one, decode, encode
from shared.contract.envelope import CloudEvent
from shared.contract.mirror import Refused
from shared.provenance.seals import PROOF_HEADER
from tests.samples import sample_events

MOMENTS = [
    "2027-06-30T16:00:00Z",
    "2027-06-30T16:00:00+00:00",
    "2027-06-30T16:00:00-00:00",
    "2027-07-01T00:00:00+08:00",
    "2027-06-30t16:00:00z",
    "2027-06-30 16:00:00Z",
    "2027-06-30T16:00Z",
    "2027-06-30T16:00:00,5Z",
    "2027-06-30T16:00:00.5Z",
    "2027-06-30T16:00:00.1234567Z",
    "2027-06-30T16:00:00.123456+23:59",
    "2027-06-30T16:00:00+24:00",
    "2027-06-30T16:00:00",
    "2027-06-30T24:00:00Z",
    "2027-02-29T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00Z",
    "2000-01-01T07:59:59+08:00",
    "2200-12-31T23:59:59.999999Z",
    "2201-01-01T07:59:59+08:00",
    "2200-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2027-06-30",
    "20270630T160000Z",
    "２０２７-06-30T16:00:00Z",
]
STRINGS = [
    "",
    " ",
    "t-1",
    "t-1\n",
    "\nt-1",
    " t-1",
    "t-1 ",
    "t\u3000",
    "\u3000t",
    "t\u00a0",
    "\u200bt",
    "t\x1f",
    "é",
    "-t",
    "a" * 128,
    "a" * 129,
    "a" * 200,
    "a" * 201,
    "a" * 255,
    "a" * 256,
    "x" * 301,
    "0",
    "01",
    "1",
    "7",
    "-1",
    "+1",
    " 1",
    "1.0",
    "٣",
    "²",
    "4611686018427387904",
    "4611686018427387905",
    "99999999999999999999",
    "true",
    "JILIN",
    "jilin",
    "NDRC",
    "good",
    "major",
    "industry",
    "trade",
    "zh-CN",
    "late",
    "a" * 64,
    "0123456789abcdef" * 4,
    "0123456789ABCDEF" * 4,
    "0123456789abcdef" * 4 + "\n",
    "Zm9v_-",
    "Zm9v+/",
    "report.pdf",
    "dir/report.pdf",
    "application/pdf",
    "2027-06-30",
    "2027-13-01",
    *MOMENTS,
]
ATTRIBUTES = ["id", "source", "time", "subject", "actor", "actordept", "aggregateversion"]
ATTRIBUTES += ["correlationid", "causationid", "idempotencykey", "requestdigest", "signedcommand", "specversion"]
DIGEST = "0123456789abcdef" * 4
LIKELY = {
    "time": MOMENTS,
    "aggregateversion": ["0", "1", "7", "007", "+7", " 7", "7 ", "7\n", "7.0", "٣", "-1", str(2**62), str(2**62 + 1)],
    "requestdigest": [DIGEST, DIGEST + "\n", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", "\n" + DIGEST],
    "signedcommand": ["Zm9v_-", "Zm9v+/", "Zm9v\n", "", "a" * 300_001],
    "actordept": ["JILIN", "jilin", "NDRC", "SC", "", "JILIN\n"],
    "specversion": ["1.0", "1.0\n", "1", "0.3"],
}
"""For each attribute, texts near the edges of what its check allows."""


@st.composite
def attribute_changes(draw: st.DrawFn) -> dict[str, str]:
    changes = {}
    for name in draw(st.sets(st.sampled_from(ATTRIBUTES), max_size=4)):
        likely = st.sampled_from(LIKELY.get(name, STRINGS))
        changes[name] = draw(st.one_of(likely, likely, st.sampled_from(STRINGS), st.text(max_size=8)))
    return changes


@settings(max_examples=2000, deadline=None)
@given(
    event=st.sampled_from(sample_events()),
    changes=attribute_changes(),
    dropped=st.sets(st.sampled_from(ATTRIBUTES), max_size=2),
    key=st.sampled_from([None, b"t-1", b"other"]),
)
def test_what_the_envelope_mirror_accepts_the_model_accepts_as_the_same_event(
    event: CloudEvent[Any], changes: dict[str, str], dropped: set[str], key: bytes | None
) -> None:
    record = encode(event)
    attributes, problem = _read_headers(record.headers)
    assert problem is None
    attributes = {name: text for name, text in {**attributes, **changes}.items() if name not in dropped}
    mirrored = by_mirror(key, record.value, attributes)
    if mirrored is None:
        return
    checked = by_models(key, record.value, attributes)
    assert mirrored == checked
    assert isinstance(checked, CloudEvent)
    assert mirrored.model_dump_json() == checked.model_dump_json()
    assert mirrored.model_fields_set == checked.model_fields_set


def test_every_event_of_the_samples_is_decoded_through_the_mirror_as_by_the_models() -> None:
    for event in sample_events():
        record = encode(event)
        attributes, _ = _read_headers(record.headers)
        read = by_mirror(record.key, record.value, attributes)
        assert read == by_models(record.key, record.value, attributes) == event


def test_a_moment_msgspec_would_round_is_left_to_the_model_which_cuts_it() -> None:
    event = sample_events()[0]
    attributes, _ = _read_headers(encode(event).headers)
    attributes["time"] = "2027-06-30T16:00:00.1234567Z"
    with pytest.raises(Refused):
        ENVELOPE.values(attributes)
    decoded = decode(event.subject.encode(), encode(event).value, _as_headers(attributes))
    assert isinstance(decoded, CloudEvent)
    assert decoded.time.microsecond == 123456


@pytest.mark.parametrize("version", ["007", "+7", " 7", "7.0", "٣", "4611686018427387905", "0"])
def test_a_number_not_written_plainly_is_left_to_the_model(version: str) -> None:
    event = sample_events()[0]
    attributes, _ = _read_headers(encode(event).headers)
    attributes["aggregateversion"] = version
    with pytest.raises(Refused):
        ENVELOPE.values(attributes)
    assert by_mirror(None, encode(event).value, attributes) is None


def test_the_envelope_has_a_mirror_derived_from_its_model() -> None:
    """Each of the model's constraints is the mirror's: a longer id is refused by both."""
    assert set(ENVELOPE.struct.__struct_fields__) == set(CloudEvent.model_fields) - {"data"}
    event = sample_events()[0]
    attributes, _ = _read_headers(encode(event).headers)
    for length, accepted in ((200, True), (201, False)):
        attributes["id"] = "x" * length
        assert (by_mirror(None, encode(event).value, attributes) is not None) is accepted
        assert isinstance(by_models(None, encode(event).value, attributes), CloudEvent) is accepted


def _as_headers(attributes: dict[str, str]) -> tuple[tuple[str, bytes | None], ...]:
    return (("content-type", b"application/json"), *((f"ce_{n}", v.encode()) for n, v in attributes.items()))


def by_mirror(key: bytes | None, value: bytes, attributes: dict[str, str]) -> CloudEvent[Any] | None:
    """The event as the decoder reads it when the envelope's mirror accepts it; None otherwise."""
    try:
        data = _data(attributes["type"], value)
    except ValidationError:
        return None
    if _mirrored(attributes, data) is None:
        return None
    event = _checked(key, value, attributes)
    return event if isinstance(event, CloudEvent) else None


def by_models(key: bytes | None, value: bytes, attributes: dict[str, str]) -> CloudEvent[Any] | str:
    """The event, or why it is not one, as the pydantic models alone read it."""
    return _checked(key, value, attributes, mirror=False)


HEADER_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["drop", "repeat", "empty", "not-utf8", "nul", "foreign", "move", "content-type", "proof"]),
        st.integers(min_value=0, max_value=20),
    ),
    max_size=3,
)


@given(event=st.sampled_from(sample_events()), sealed=st.booleans(), changes=HEADER_CHANGES)
def test_headers_as_written_are_read_as_the_one_by_one_reader_reads_them(
    event: CloudEvent[Any], sealed: bool, changes: list[tuple[str, int]]
) -> None:
    headers = list(encode(event).headers) + ([(PROOF_HEADER, b"1.k.s.1." + b"0" * 64)] if sealed else [])
    for change, at in changes:
        if not headers:
            break
        name, raw = headers[at % len(headers)]
        if change == "drop":
            del headers[at % len(headers)]
        elif change == "repeat":
            headers.append((name, raw))
        elif change == "empty":
            headers[at % len(headers)] = (name, None)
        elif change == "not-utf8":
            headers[at % len(headers)] = (name, b"\xff" + (raw or b""))
        elif change == "nul":
            headers[at % len(headers)] = (name, (raw or b"") + b"\0x")
        elif change == "foreign":
            headers.insert(at % (len(headers) + 1), ("ce_traceparent", b"00-abc"))
        elif change == "proof":
            headers.insert(at % (len(headers) + 1), (PROOF_HEADER, None if at % 2 else b"1"))
        elif change == "move":
            headers.append(headers.pop(at % len(headers)))
        else:
            headers.insert(at % (len(headers) + 1), ("content-type", b"application/xml"))
    written = tuple(headers)
    assert _read_headers(written) == _read_headers_one_by_one(written)


def test_a_record_as_our_writers_write_it_is_read_without_the_one_by_one_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(headers: object) -> object:
        raise AssertionError(f"read one by one: {headers!r}")

    monkeypatch.setattr(codec, "_read_headers_one_by_one", slow)
    for event in sample_events():
        record = encode(event)
        sealed = (*record.headers, (PROOF_HEADER, b"1.k.s.1." + b"0" * 64))
        assert decode(record.key, record.value, sealed) == decode(record.key, record.value, record.headers) == event
