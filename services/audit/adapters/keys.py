"""The keys that sign the audit chain's checkpoints, kept apart from the audit database.

Whoever can edit the database must not also hold the key that would let them re-sign it:
the private key lives in its own file (created 0600 in one step, never written and then
chmod-ed), each key has an id, and verification looks public keys up by that id, so a key
can be rotated while old checkpoints still verify with the public key they were signed with.

``python -m services.audit.adapters.keys show | rotate`` (with the audit service's settings).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


class TrustedKeys:
    """Public keys by key id: the signing key's, and every earlier one kept for verification."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def published(self) -> list[dict[str, str]]:
        return [{"key_id": kid, "public_key": public_pem(key)} for kid, key in sorted(self._keys.items())]

    def verifies(self, kid: str, message: bytes, signature: str) -> bool:
        key = self._keys.get(kid)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def load(cls, signing: SigningKey, folder: Path, extra_pems: list[str]) -> TrustedKeys:
        keys: dict[str, Ed25519PublicKey] = {signing.key_id: signing.public_key}
        pems = [path.read_bytes() for path in sorted(folder.glob("*.pem"))] if folder.is_dir() else []
        for pem in [*pems, *(text.encode() for text in extra_pems)]:
            public = serialization.load_pem_public_key(pem)
            if not isinstance(public, Ed25519PublicKey):
                raise ValueError("a trusted checkpoint key is not an Ed25519 public key")
            keys[key_id(public)] = public
        return cls(keys)


def write_private(path: Path, key: Ed25519PrivateKey, *, replace: bool = False) -> None:
    """Writes the key readable by its owner only, in one step: a temporary file opened 0600,
    then linked into place (or, with ``replace``, renamed over the old key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            temporary.replace(path)
        else:
            os.link(temporary, path)  # fails if another process made the key first
    finally:
        temporary.unlink(missing_ok=True)


def load_signing_key(path: Path, *, create: bool) -> SigningKey:
    """The PEM Ed25519 key at ``path``; with ``create`` (development) one is made when none exists."""
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no checkpoint signing key at {path}")
        with contextlib.suppress(FileExistsError):  # made by another instance meanwhile: use that one
            write_private(path, Ed25519PrivateKey.generate())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return SigningKey(key, key_id(key.public_key()))


def keep_public(signing: SigningKey, folder: Path) -> Path:
    """Files the signing key's public half under its id, so it still verifies after rotation."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{signing.key_id}.pem"
    if not path.exists():
        temporary = folder / f".{signing.key_id}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(public_pem(signing.public_key))
        temporary.replace(path)
    return path


def rotate(signing_path: Path, trusted: Path) -> tuple[str, str]:
    """A new signing key in place of the old; the old public key stays trusted. Restart the
    audit service to sign with the new key. Returns (old key id, new key id)."""
    old = load_signing_key(signing_path, create=False)
    keep_public(old, trusted)
    new = Ed25519PrivateKey.generate()
    write_private(signing_path, new, replace=True)
    keep_public(SigningKey(new, key_id(new.public_key())), trusted)
    return old.key_id, key_id(new.public_key())


def main(argv: list[str]) -> int:
    from services.audit.settings import AuditSettings

    settings = AuditSettings()
    if argv[:1] == ["rotate"]:
        old, new = rotate(settings.signing_key_file(), settings.trusted_keys_folder())
        print(f"rotated: {old} -> {new}; restart the audit service to sign with {new}")
        return 0
    if argv[:1] == ["show"]:
        signing = load_signing_key(settings.signing_key_file(), create=False)
        print(f"signing key {signing.key_id} at {settings.signing_key_file()}")
        print(public_pem(signing.public_key), end="")
        return 0
    print("usage: python -m services.audit.adapters.keys show | rotate", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
