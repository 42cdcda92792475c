"""Evidence files, kept under their SHA-256: written as they stream in (bounded, never whole
in memory), refused when their content is not the type they claim, and served only while
their bytes still have the hash the trail holds. On disk by default; in PostgreSQL, in
chunks, when the service is given a database, so that several instances share them."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.contract.catalog import Evidence
from shared.contract.types import EVIDENCE_TYPES

HEAD_BYTES = 16
READ_BYTES = 1 << 20
OFFICE_PARTS = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/presentation.xml": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


class EvidenceRefused(Exception):
    """An upload that is not kept; ``status`` is the answer (413, 415 or 422)."""

    def __init__(self, status: int, detail: str, field: str) -> None:
        super().__init__(detail)
        self.status, self.field = status, field


class Tampered(Exception):
    """A stored file whose bytes no longer have the hash it is kept under."""


@dataclass(frozen=True)
class Mismatch:
    sha256: str
    found: str
    """The hash its bytes have now ("missing" when the file is gone)."""


def content_type(head: bytes, path: Path) -> str | None:
    """What the file's own bytes say it is, among the evidence types; None when none."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names:
            return next((kind for part, kind in OFFICE_PARTS.items() if part in names), None)
    return None


class EvidenceStore:
    """Files under ``folder/<first two hex digits>/<sha256>``; uploads land in ``folder/incoming``
    first. Several instances share evidence by sharing the folder."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder, self.max_bytes = folder, max_bytes

    async def start(self) -> None:
        """Nothing to open on disk."""

    async def close(self) -> None:
        """Nothing to close on disk."""

    async def keep(self, chunks: AsyncIterator[bytes], name: str, claimed: str) -> Evidence:
        """Streams the upload to disk, hashing it; refuses it over ``max_bytes``, empty, or
        when its content is not ``claimed``."""
        if claimed not in EVIDENCE_TYPES:
            raise EvidenceRefused(
                415, f"{claimed or 'no type'} is not a type of evidence ({', '.join(EVIDENCE_TYPES)})", "Content-Type"
            )
        incoming = self.folder / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        landing = incoming / uuid.uuid4().hex
        try:
            digest, size, head = await self._landed(chunks, landing)
            found = await asyncio.to_thread(content_type, head, landing)
            if found != claimed:
                raise EvidenceRefused(
                    415, f"the file's content is {found or 'of no evidence type'}, not {claimed}", "Content-Type"
                )
            await self._put(landing, digest, size, claimed)
        finally:
            landing.unlink(missing_ok=True)
        return Evidence.model_validate({"name": name, "media_type": claimed, "size": size, "sha256": digest})

    async def _landed(self, chunks: AsyncIterator[bytes], landing: Path) -> tuple[str, int, bytes]:
        digest, size, head = hashlib.sha256(), 0, b""
        with landing.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise EvidenceRefused(413, f"evidence is at most {self.max_bytes} bytes", "body")
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise EvidenceRefused(422, "the file is empty", "body")
        return digest.hexdigest(), size, head

    async def _put(self, landing: Path, sha256: str, size: int, media_type: str) -> None:
        kept = self.path_of(sha256)
        kept.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(landing.replace, kept)

    def path_of(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / sha256

    async def holds(self, evidence: Evidence) -> bool:
        """Whether the file was uploaded: kept under its hash, with its size."""
        path = self.path_of(evidence.sha256)
        return path.is_file() and path.stat().st_size == evidence.size

    async def checked(self, sha256: str) -> Path:
        """The file's path, once its bytes have been read again and still have its hash."""
        path = self.path_of(sha256)
        found = await asyncio.to_thread(_hash_of, path)
        if found != sha256:
            raise Tampered(f"the stored file {sha256} now hashes to {found}")
        return path

    async def check(self) -> tuple[int, list[Mismatch]]:
        """Every stored file read again: how many there are, and those whose hash changed."""
        return await asyncio.to_thread(self._check)

    def _check(self) -> tuple[int, list[Mismatch]]:
        count, mismatches = 0, []
        for path in self._stored():
            count += 1
            if (found := _hash_of(path)) != path.name:
                mismatches.append(Mismatch(path.name, found))
        return count, mismatches

    def _stored(self) -> Iterator[Path]:
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.iterdir()):
            if shard.is_dir() and len(shard.name) == 2:
                yield from sorted(p for p in shard.iterdir() if p.is_file())


def _hash_of(path: Path) -> str:
    try:
        with path.open("rb") as stored:
            return hashlib.file_digest(stored, "sha256").hexdigest()
    except FileNotFoundError:
        return "missing"


class PostgresEvidenceStore(EvidenceStore):
    """Files in PostgreSQL, in chunks of ``READ_BYTES`` (never a whole file in one value, nor in
    memory); uploads land in ``folder/incoming`` and files served are written to
    ``folder/served`` once their bytes are read back and still have their hash."""

    def __init__(self, folder: Path, max_bytes: int, url: str) -> None:
        super().__init__(folder, max_bytes)
        self._engine: AsyncEngine = create_async_engine(url)

    async def start(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(SCHEMA.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    async def _put(self, landing: Path, sha256: str, size: int, media_type: str) -> None:
        async with self._engine.begin() as connection:
            known = await connection.scalar(select(FILES.c.size).where(FILES.c.sha256 == sha256))
            if known is not None:
                return  # the same bytes, uploaded before
            await connection.execute(insert(FILES).values(sha256=sha256, size=size, media_type=media_type))
            with landing.open("rb") as landed:
                for seq, chunk in enumerate(iter(partial(landed.read, READ_BYTES), b"")):
                    await connection.execute(insert(CHUNKS).values(sha256=sha256, seq=seq, data=chunk))

    async def holds(self, evidence: Evidence) -> bool:
        async with self._engine.connect() as connection:
            size = await connection.scalar(select(FILES.c.size).where(FILES.c.sha256 == evidence.sha256))
        return size == evidence.size

    async def checked(self, sha256: str) -> Path:
        served = self.folder / "served"
        served.mkdir(parents=True, exist_ok=True)
        landing = served / f".{uuid.uuid4().hex}"
        try:
            with landing.open("wb") as out:
                found = await self._hash(sha256, out.write)
            if found != sha256:
                raise Tampered(f"the stored file {sha256} now hashes to {found}")
            path = served / sha256
            landing.replace(path)
            return path
        finally:
            landing.unlink(missing_ok=True)

    async def check(self) -> tuple[int, list[Mismatch]]:
        async with self._engine.connect() as connection:
            stored = list(await connection.scalars(select(FILES.c.sha256).order_by(FILES.c.sha256)))
        mismatches = [Mismatch(sha256, found) for sha256 in stored if (found := await self._hash(sha256)) != sha256]
        return len(stored), mismatches

    async def _hash(self, sha256: str, write: Callable[[bytes], object] | None = None) -> str:
        """What the stored chunks hash to now ("missing" when there are none), passing each on."""
        digest, chunks = hashlib.sha256(), 0
        async with self._engine.connect() as connection:
            rows = await connection.stream(
                select(CHUNKS.c.data).where(CHUNKS.c.sha256 == sha256).order_by(CHUNKS.c.seq)
            )
            async for (data,) in rows:
                chunks += 1
                digest.update(data)
                if write is not None:
                    write(data)
        return digest.hexdigest() if chunks else "missing"


SCHEMA = MetaData()
FILES = Table(
    "evidence_files",
    SCHEMA,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(200), nullable=False),
)
CHUNKS = Table(
    "evidence_chunks",
    SCHEMA,
    Column("sha256", String(64), ForeignKey("evidence_files.sha256"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
