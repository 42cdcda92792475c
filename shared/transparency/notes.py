"""C2SP checkpoints (``tlog-checkpoint``) in C2SP signed notes with Ed25519, the format of Go's
``golang.org/x/mod/sumdb/note``: what the audit service publishes of its tree, and what any
witness checks with nothing but the verifier key.

A checkpoint's body is three lines: the log's origin, its size in decimal, its root hash in
base64. The note is the body, an empty line, and a signature line ``— <name> <base64(key hash
|| signature)>``, where the key hash is the first four bytes of SHA-256(name || "\\n" || 0x01 ||
public key) and the signature is Ed25519 over the body. The verifier key is
``<name>+<key hash, 8 hex digits>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.provenance.keys import SigningKey, raw_public

ED25519 = b"\x01"
DASH = "\u2014"


class NoteError(ValueError):
    """Not a note, not a checkpoint, or no signature by the expected key holds."""


def key_hash(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw_public(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    return f"{name}+{key_hash(name, public).hex()}+{base64.b64encode(ED25519 + raw_public(public)).decode()}"


@dataclass(frozen=True)
class Verifier:
    name: str
    hash: bytes
    public: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        try:
            name, hash_hex, key_b64 = text.strip().split("+", 2)
            raw = base64.b64decode(key_b64, validate=True)
            hashed = bytes.fromhex(hash_hex)
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"not a verifier key: {error}") from error
        if raw[:1] != ED25519 or len(raw) != 33 or len(hashed) != 4:
            raise NoteError("not an Ed25519 verifier key")
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
        if key_hash(name, public) != hashed:
            raise NoteError("the verifier key's hash is not its key's")
        return cls(name, hashed, public)


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    if not origin or "\n" in origin:
        raise NoteError("an origin is one non-empty line")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(body: str, name: str, key: SigningKey) -> str:
    signature = key.sign(body.encode())
    return f"{body}\n{DASH} {name} {base64.b64encode(key_hash(name, key.public_key) + signature).decode()}\n"


def _split(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The body and each signature line as (name, key hash, signature)."""
    body, separator, signatures = note.rpartition("\n\n")
    if not separator or not body:
        raise NoteError("not a signed note: no empty line before the signatures")
    body += "\n"
    lines: list[tuple[str, bytes, bytes]] = []
    for line in signatures.removesuffix("\n").split("\n"):
        prefix, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"a signature line cannot be read: {error}") from error
        if prefix != DASH or len(raw) < 5:
            raise NoteError("a signature line cannot be read")
        lines.append((name, raw[:4], raw[4:]))
    return body, lines


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[str, Verifier]:
    """The note's body and the verifier whose signature on it holds; NoteError when none does."""
    body, lines = _split(note)
    known = {(v.name, v.hash): v for v in verifiers}
    for name, hashed, signature in lines:
        verifier = known.get((name, hashed))
        if verifier is None:
            continue
        try:
            verifier.public.verify(signature, body.encode())
        except InvalidSignature as error:
            raise NoteError(f"the signature of {name} does not verify") from error
        return body, verifier
    raise NoteError("no signature by a known key")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is an origin, a size and a root hash, one a line")
        try:
            size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"not a checkpoint: {error}") from error
        if size < 0 or len(root) != 32 or not lines[0] or lines[1] != str(size):
            raise NoteError("not a checkpoint: its size or root hash is malformed")
        return cls(lines[0], size, root)
