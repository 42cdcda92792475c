"""The hash chain and its signed checkpoints. Pure: bytes in, hashes and signatures out.

Each entry's hash is SHA-256(previous hash || canonical bytes of the record), so changing,
removing or inserting any entry changes every hash after it; a checkpoint signs the head
hash at a sequence with Ed25519, so a copy of it held elsewhere pins the history up to it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record exactly as it was read from Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def headers_json(headers: tuple[tuple[str, bytes], ...]) -> bytes:
    """Headers in their canonical form, which is also how the store keeps them."""
    return orjson.dumps([[name, _b64(value)] for name, value in headers])


def canonical(record: LogRecord, stored_headers: bytes | None = None) -> bytes:
    """One byte string per record, whatever its content; the same record always gives the same.

    ``stored_headers`` is ``headers_json(record.headers)`` when the caller already has it."""
    headers = stored_headers if stored_headers is not None else headers_json(record.headers)
    return orjson.dumps([record.topic, record.partition, record.offset, record.timestamp, _b64(record.key),
                         _b64(record.value), orjson.Fragment(headers)])  # fmt: skip


def chain_hash(previous: str, record: LogRecord, stored_headers: bytes | None = None) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + canonical(record, stored_headers)).hexdigest()


def checkpoint_message(sequence: int, head_hash: str, signed_at: datetime) -> bytes:
    return orjson.dumps({"sequence": sequence, "head_hash": head_hash, "signed_at": signed_at.isoformat()})


class CheckpointSigner:
    def __init__(self, private_key: Ed25519PrivateKey, key_id: str) -> None:
        self._private = private_key
        self.key_id = key_id
        self.public_key = private_key.public_key()

    def sign(self, sequence: int, head_hash: str, signed_at: datetime) -> str:
        return base64.b64encode(self._private.sign(checkpoint_message(sequence, head_hash, signed_at))).decode()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip

    @classmethod
    def from_file(cls, path: Path, *, create: bool) -> CheckpointSigner:
        """Loads a PEM Ed25519 key; with ``create`` (development) makes one when none exists."""
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"no checkpoint signing key at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)
            path.chmod(0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(key, key_id=hashlib.sha256(raw).hexdigest()[:16])


def signature_valid(public_key: Ed25519PublicKey, sequence: int, head_hash: str, signed_at: datetime,
                    signature: str) -> bool:  # fmt: skip
    try:
        public_key.verify(base64.b64decode(signature), checkpoint_message(sequence, head_hash, signed_at))
        return True
    except (InvalidSignature, ValueError):
        return False
