"""The alert stream's event ids: positions it issued read back exactly, anything else refused
as a ValueError (answered 422), never a crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.adapters.alert_stream import StreamPosition

positions = st.dictionaries(st.integers(0, 1023), st.integers(0, 10**18 - 1), min_size=1, max_size=12)


@given(positions)
def test_a_position_reads_back_as_issued(offsets: dict[int, int]) -> None:
    position = StreamPosition(tuple(sorted(offsets.items())))
    assert StreamPosition.parse(position.encode()) == position


@given(st.text(max_size=200))
def test_any_other_text_is_a_value_error(text: str) -> None:
    try:
        StreamPosition.parse(text)
    except ValueError:
        return


def test_after_moves_one_partition_past_the_record() -> None:
    position = StreamPosition(((0, 5), (1, 0)))
    assert position.after(1, 41).encode() == "0-5.1-42"
    for text in ("", "0-1.0-2", "a-1", "0-1.", "-1-2", "0-" + "9" * 30):
        try:
            StreamPosition.parse(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was accepted")
