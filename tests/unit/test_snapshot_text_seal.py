"""A snapshot's seal is computed a piece at a time, with the same result as over its whole text,
and sealing a large snapshot no longer holds two more copies of it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.adapters.snapshots import ScheduleSnapshots
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SnapshotSeal


def a_seal(folder: Path) -> SnapshotSeal:
    return SnapshotSeal(KeyFolder(folder).signing_key("notifications", create=True))


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> SnapshotSeal:
    return a_seal(tmp_path_factory.mktemp("keys"))


# Text a snapshot holds (titles in Chinese, quotes, backslashes, control characters), and bytes
# that are not UTF-8 at all, which the reader replaces as it decodes.
TEXTS = st.text(alphabet=st.sampled_from(list('ab"\\\n\t\x00\x1f长春中韩合作示范区é€😀 {}[]:,')), max_size=300)
RAW = st.one_of(
    TEXTS.map(str.encode),
    st.binary(max_size=300),
    st.lists(TEXTS.map(str.encode) | st.binary(max_size=8)).map(b"".join),
)


@given(RAW, st.integers(min_value=1, max_value=40))
def test_the_seal_of_pieces_is_the_seal_of_the_whole_text(seal: SnapshotSeal, raw: bytes, piece: int) -> None:
    assert seal.text_seal(raw, piece) == seal.document(raw.decode(errors="replace"))


def test_an_old_snapshot_still_holds_and_a_changed_one_does_not(seal: SnapshotSeal) -> None:
    body = orjson.dumps({"deadlines": [["task-1", None, '长春 "示范区"', 1]] * 1000})
    sealed = seal.document(body.decode())  # as snapshots were sealed before
    assert seal.holds_text(body, sealed)
    assert not seal.holds_text(body.replace(b"task-1", b"task-2", 1), sealed)


def test_sealing_a_large_snapshot_holds_no_copy_of_its_text(tmp_path: Path) -> None:
    captured = orjson.dumps({"deadlines": [[f"task-{n}", f'里程碑 "{n}"', "\\n"] for n in range(200_000)]})
    snapshots = ScheduleSnapshots(tmp_path / "schedule.snapshot.json", a_seal(tmp_path / "keys"))
    tracemalloc.start()
    try:
        snapshots.save([captured])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Its text (two to four bytes a character) and the text's JSON were both made whole.
    assert len(captured) > 8_000_000 and peak < len(captured) // 2, (len(captured), peak)
    assert (tmp_path / "schedule.snapshot.json").read_bytes().endswith(captured)
