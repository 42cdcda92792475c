"""Evidence kept under its SHA-256 (issue 30, item 1): streamed to disk within a bound, refused
when its content is not the type it claims, and not served once a byte of it has changed."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.tasks.adapters.evidence import EvidenceRefused, EvidenceStore, Tampered

PDF = b"%PDF-1.7\n" + b"0" * 100_000 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def chunks_of(content: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for at in range(0, len(content), size):
        yield content[at : at + size]


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence", max_bytes=200_000)


async def test_a_file_is_kept_under_its_hash_streamed_in_chunks(store: EvidenceStore) -> None:
    kept = await store.keep(chunks_of(PDF), "验收报告.pdf", "application/pdf")
    assert kept.sha256 == hashlib.sha256(PDF).hexdigest() and kept.size == len(PDF)
    assert kept.name == "验收报告.pdf" and kept.media_type == "application/pdf"
    assert store.path_of(kept.sha256).read_bytes() == PDF
    assert await store.holds(kept) and await store.checked(kept.sha256) == store.path_of(kept.sha256)
    assert not any((store.folder / "incoming").iterdir()), "nothing is left half-written"


async def test_an_office_document_is_told_by_its_parts(store: EvidenceStore) -> None:
    assert (await store.keep(chunks_of(docx()), "minutes.docx", DOCX)).media_type == DOCX
    with pytest.raises(EvidenceRefused) as refused:
        await store.keep(
            chunks_of(docx()), "minutes.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    assert refused.value.status == 415


@pytest.mark.parametrize(
    ("content", "claimed", "status"),
    [
        (PNG, "application/pdf", 415),  # content that is not what it claims
        (b"<html><script>alert(1)</script>", "text/html", 415),  # not a type of evidence
        (b"%PDF-" + b"0" * 200_000, "application/pdf", 413),  # over the bound
        (b"", "application/pdf", 422),
    ],
)
async def test_what_is_refused_is_not_kept(store: EvidenceStore, content: bytes, claimed: str, status: int) -> None:
    with pytest.raises(EvidenceRefused) as refused:
        await store.keep(chunks_of(content), "file", claimed)
    assert refused.value.status == status
    count, _ = await store.check()
    assert count == 0
    incoming = store.folder / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


async def test_a_changed_byte_is_reported_and_the_file_no_longer_served(store: EvidenceStore) -> None:
    kept = await store.keep(chunks_of(PDF), "report.pdf", "application/pdf")
    other = await store.keep(chunks_of(PNG), "site.png", "image/png")
    path = store.path_of(kept.sha256)
    tampered = bytearray(path.read_bytes())
    tampered[5000] ^= 0x01
    path.write_bytes(bytes(tampered))

    with pytest.raises(Tampered):
        await store.checked(kept.sha256)
    count, mismatches = await store.check()
    assert count == 2 and [m.sha256 for m in mismatches] == [kept.sha256]
    assert mismatches[0].found == hashlib.sha256(bytes(tampered)).hexdigest()
    assert await store.checked(other.sha256)
