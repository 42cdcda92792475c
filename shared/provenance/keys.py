"""The one key machinery of the project: each writer's Ed25519 signing key, kept apart from the
data it vouches for, and the trust store of public keys that every reader checks against.

Under the keys folder (``POLICYTRACK_KEYS_DIR``, ``.keys/`` by default)::

    <owner>/signing-key.pem    the owner's private key: 0600 from its first byte, folder 0700
    trust/<owner>/<kid>.jwk    the public keys readers trust: a JWK naming its owner and the
                               window in which it may sign (``nbf``, ``exp``; seconds since 1970)

An owner is a service (``tasks``, ``notifications``, ``audit``) or a department's system (its
code: ``JILIN``). A key's id is the first 16 hex digits of the SHA-256 of its raw public key.
Rotating makes a new key, closes the old one's window at that moment and opens the new one's:
what the old key signed before stays verifiable, and it can vouch for nothing newer.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import stat
import time
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.settings import RuntimeSettings

SERVICES = ("tasks", "notifications", "audit")
ROTATION_GRACE = 600.0
"""Seconds a rotated-out key may still sign: the time to restart its owner's processes."""
SIGNING_KEY = "signing-key.pem"
TRUST = "trust"


class InsecureKey(RuntimeError):
    """A private key others may read: refused, as ssh refuses one."""


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str
    owner: str = ""

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()

    def secret_for(self, purpose: str) -> bytes:
        """A symmetric secret derived from the private key for one purpose (sealing the owner's
        own snapshots): it changes when the key is rotated, and tells nothing of the key."""
        raw = self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return hmac.digest(raw, f"policytrack.{purpose}.v1".encode(), "sha256")


@dataclass(frozen=True)
class TrustedKey:
    """A public key, whose it is, and when it may sign."""

    kid: str
    public: Ed25519PublicKey
    owner: str
    not_before: float | None = None
    not_after: float | None = None

    def valid_at(self, moment: float | None) -> bool:
        """Whether the key may have signed at ``moment`` (seconds since 1970; None: any time)."""
        if moment is None:
            return True
        return (self.not_before is None or moment >= self.not_before) and (
            self.not_after is None or moment <= self.not_after
        )

    def jwk(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(raw_public(self.public)),
            "kid": self.kid,
            "alg": "Ed25519",
            "use": "sig",
            "owner": self.owner,
        }
        if self.not_before is not None:
            document["nbf"] = int(self.not_before)
        if self.not_after is not None:
            document["exp"] = int(self.not_after)
        return document

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # As its JWK: a process of its own (a rebuild's part) trusts the same keys.
        return TrustedKey.from_jwk, (self.jwk(),)

    @classmethod
    def from_jwk(cls, document: dict[str, Any]) -> TrustedKey:
        if document.get("kty") != "OKP" or document.get("crv") != "Ed25519":
            raise ValueError("a trusted key must be an Ed25519 JWK (kty OKP, crv Ed25519)")
        public = Ed25519PublicKey.from_public_bytes(from_b64url(str(document["x"])))
        kid = key_id(public)
        if document.get("kid", kid) != kid:
            raise ValueError(f"the JWK's kid {document.get('kid')!r} is not its key's id {kid}")
        nbf, exp = document.get("nbf"), document.get("exp")
        return cls(kid, public, str(document["owner"]), float(nbf) if nbf else None, float(exp) if exp else None)

    @classmethod
    def of_pem(cls, pem: bytes, owner: str) -> TrustedKey:
        public = serialization.load_pem_public_key(pem)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("a trusted key is not an Ed25519 public key")
        return cls(key_id(public), public, owner)


REFRESH_SECONDS = 60.0
"""How often the keys already known are read again, for windows changed by a rotation elsewhere."""
_KEY_ID = re.compile(r"[0-9a-f]{16}")
"""A key id as ``key_id`` makes it: anything else is no file name to look for."""


class TrustStore:
    """The public keys readers trust, by key id, read from ``trust/<owner>/*.jwk`` (and any
    given besides). A key id not known yet makes the store look for that key's file, so a key
    published or rotated elsewhere is trusted without a restart, from its first use; an id found
    nowhere is not looked for again for ``recheck_seconds`` (records with made-up ids cost nothing)."""

    def __init__(self, folder: Path, extra: Iterable[TrustedKey] = (), recheck_seconds: float = 2.0) -> None:
        self.folder = folder
        self._extra = {key.kid: key for key in extra}
        self._keys: dict[str, TrustedKey] = {}
        self._recheck = recheck_seconds
        self._missed: dict[str, float] = {}
        self._read_at = float("-inf")
        self.reload()

    def __reduce__(self) -> tuple[Any, tuple[Path, list[TrustedKey], float]]:
        # Rebuilt from its folder in the process it is sent to, knowing the same keys besides.
        return TrustStore, (self.folder, list(self._extra.values()), self._recheck)

    def reload(self) -> None:
        keys = dict(self._extra)
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*/*.jwk")):
                with contextlib.suppress(OSError, ValueError, KeyError, orjson.JSONDecodeError):
                    key = TrustedKey.from_jwk(orjson.loads(path.read_bytes()))
                    if key.owner == path.parent.name:  # a key filed under another owner is not that owner's
                        keys[key.kid] = key
        self._keys, self._read_at = keys, time.monotonic()

    def get(self, kid: str) -> TrustedKey | None:
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:  # a retirement's new window, say
            self.reload()
        found = self._keys.get(kid)
        if found is not None or not _KEY_ID.fullmatch(kid):
            return found
        now = time.monotonic()
        if now - self._missed.get(kid, float("-inf")) < self._recheck:
            return None
        for path in self.folder.glob(f"*/{kid}.jwk") if self.folder.is_dir() else ():
            with contextlib.suppress(OSError, ValueError, KeyError, orjson.JSONDecodeError):
                key = TrustedKey.from_jwk(orjson.loads(path.read_bytes()))
                if key.kid == kid and key.owner == path.parent.name:
                    self._keys[kid] = key
                    self._missed.pop(kid, None)
                    return key
        if len(self._missed) > 10_000:  # a flood of made-up ids: forget the oldest misses
            self._missed = dict(sorted(self._missed.items(), key=lambda item: item[1])[-5_000:])
        self._missed[kid] = now
        return None

    def refusal(
        self,
        kid: str,
        message: bytes,
        signature: bytes,
        *,
        owners: Collection[str] | None = None,
        at: float | None = None,
    ) -> str | None:
        """Why ``signature`` is not ``kid``'s over ``message`` by one of ``owners`` at ``at``; None
        when it is."""
        key = self.get(kid)
        if key is None:
            return f"signed with an unknown key {kid!r}"
        if owners is not None and key.owner not in owners:
            return f"signed by {key.owner!r}, who may not write this (only {', '.join(sorted(owners))})"
        if not key.valid_at(at):
            return f"signed with key {kid} outside the window in which it may sign"
        try:
            key.public.verify(signature, message)
        except InvalidSignature:
            return f"the signature does not verify with key {kid}"
        return None

    def of(self, *owners: str) -> list[TrustedKey]:
        return sorted((key for key in self._keys.values() if key.owner in owners), key=lambda k: k.kid)

    def jwks(self, *owners: str) -> dict[str, Any]:
        """The keys of ``owners`` (every key without), as a JSON Web Key Set."""
        keys = self.of(*owners) if owners else sorted(self._keys.values(), key=lambda k: k.kid)
        return {"keys": [key.jwk() for key in keys]}


def write_private(path: Path, key: Ed25519PrivateKey, *, replace: bool = False) -> None:
    """Writes the key readable by its owner only (``write_secret``)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_secret(path, pem, replace=replace)


def write_secret(path: Path, content: bytes, *, replace: bool = False) -> None:
    """Writes ``content`` readable by its owner only, in one step: a temporary file opened 0600,
    then linked into place (or, with ``replace``, renamed over the old file). Without
    ``replace``, FileExistsError when another process wrote the file first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            temporary.replace(path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def refuse_if_shared(path: Path) -> None:
    """Refuses a secret that its group or others may read, as ssh refuses such a key."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InsecureKey(f"{path} is readable by others (mode {mode:o}): chmod 600 it, or make a new key")


def load_signing_key(path: Path, *, create: bool, owner: str = "") -> SigningKey:
    """The PEM Ed25519 key at ``path``; with ``create`` (development) one is made when none
    exists. A key that its group or others may read is refused."""
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no signing key at {path}")
        with contextlib.suppress(FileExistsError):  # made by another instance meanwhile: use that one
            write_private(path, Ed25519PrivateKey.generate())
    refuse_if_shared(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return SigningKey(key, key_id(key.public_key()), owner)


def _write_record(path: Path, key: TrustedKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(orjson.dumps(key.jwk(), option=orjson.OPT_INDENT_2))
    temporary.replace(path)


@dataclass(frozen=True)
class KeyFolder:
    """The keys folder of one installation: every owner's private key, and the trust store."""

    root: Path
    trust_root: Path | None = None

    @classmethod
    def of(cls, runtime: RuntimeSettings) -> KeyFolder:
        return cls(runtime.keys_dir, runtime.trust_dir)

    def signing_key_path(self, owner: str) -> Path:
        return self.root / owner / SIGNING_KEY

    @property
    def trust_folder(self) -> Path:
        return self.trust_root or self.root / TRUST

    def record_path(self, owner: str, kid: str) -> Path:
        return self.trust_folder / owner / f"{kid}.jwk"

    def signing_key(self, owner: str, *, create: bool, path: Path | None = None) -> SigningKey:
        """The owner's key (made when ``create`` and missing), its public key filed in the trust store."""
        key = load_signing_key(path or self.signing_key_path(owner), create=create, owner=owner)
        self.publish(key)
        return key

    def publish(self, key: SigningKey, *, not_before: float | None = None) -> Path:
        """Files the key's public half under its owner, unless it is there already."""
        path = self.record_path(key.owner, key.key_id)
        if not path.exists():
            _write_record(path, TrustedKey(key.key_id, key.public_key, key.owner, not_before=not_before))
        return path

    def trust(self, extra: Iterable[TrustedKey] = ()) -> TrustStore:
        return TrustStore(self.trust_folder, extra)

    def rotate(self, owner: str, *, path: Path | None = None, grace_seconds: float = ROTATION_GRACE) -> tuple[str, str]:
        """A new signing key in place of the old, trusted from now; the old one may sign for
        ``grace_seconds`` more (until the owner's processes restart with the new one), then is
        retired. Returns (old id, new id)."""
        now = time.time()
        key_path = path or self.signing_key_path(owner)
        old = load_signing_key(key_path, create=False, owner=owner)
        self.publish(old)
        self.retire(owner, old.key_id, at=now + grace_seconds)
        new = Ed25519PrivateKey.generate()
        write_private(key_path, new, replace=True)
        fresh = SigningKey(new, key_id(new.public_key()), owner)
        self.publish(fresh, not_before=now)
        return old.key_id, fresh.key_id

    def retire(self, owner: str, kid: str, *, at: float | None = None) -> None:
        """Closes the key's window at ``at`` (now by default): it vouches for nothing signed
        after, a key that leaked included; what it signed before stays verifiable."""
        record = self.record_path(owner, kid)
        if not record.exists():
            raise FileNotFoundError(f"no trusted key {kid} of {owner} at {record}")
        key = TrustedKey.from_jwk(orjson.loads(record.read_bytes()))
        _write_record(record, replace(key, not_after=time.time() if at is None else at))


def utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
