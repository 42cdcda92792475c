"""Signed acts: a department's system signs each command it sends with its own registered key,
and the events the command causes keep that signature, so anyone can later show that the
department's key signed exactly that command, without trusting our services.

On ``policy.commands`` the signature is a JWS (RFC 7515) with a detached payload: the payload is
the record's value (the command's JSON), the protected header carries the command's name, its
Idempotency-Key and who acts (user, department, roles), so a replayed record is harmless and
nothing that decides what the command does is outside the signature. Over HTTP the signature is
an RFC 9421 HTTP Message Signature (``shared/http/signatures.py``). Either way the events keep a
``SignedAct``: what was signed, byte for byte, the signature, and the key id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter

from shared.contract.codes import Department, Role
from shared.provenance.keys import SigningKey, TrustStore, b64url, from_b64url, raw_public

SIGNATURE_HEADER = "signature"
"""The record header that carries a command's JWS (detached)."""
COMMAND_TYPE = "policytrack-command+jws"
REGISTRY = jws.JWSRegistry(
    header_registry={
        "cmd": HeaderParameter("the command's name", "str", required=True),
        "idk": HeaderParameter("the command's Idempotency-Key", "str", required=True),
        "sub": HeaderParameter("the user who acts", "str", required=True),
        "dept": HeaderParameter("the department whose system signs", "str", required=True),
        "roles": HeaderParameter("the user's roles", "list[str]", required=True),
        "cid": HeaderParameter("the correlation id", "str"),
        "ifm": HeaderParameter("If-Match: the version the command expects", "int"),
        "iat": HeaderParameter("when it was signed, seconds since 1970", "int"),
    },
    algorithms=["Ed25519"],
)


class BadSignature(Exception):
    """The command's signature is missing, unreadable, or not its department's."""


@dataclass(frozen=True)
class SignedAct:
    """What a department's key signed, kept with the events a command caused: enough to check the
    signature again with nothing but the department's public key."""

    scheme: Literal["jws-detached", "http-message-signature"]
    kid: str
    signed: bytes
    """The exact bytes the signature covers: the JWS signing input, or the RFC 9421 signature base."""
    signature: bytes
    body: bytes
    """The command's body as sent (the JWS payload, or the request body whose digest was signed)."""

    def encode(self) -> str:
        """The ``signedcommand`` attribute of the events the command caused."""
        document = {
            "scheme": self.scheme,
            "kid": self.kid,
            "signed": b64url(self.signed),
            "signature": b64url(self.signature),
            "body": b64url(self.body),
        }
        return b64url(orjson.dumps(document))

    @classmethod
    def decode(cls, text: str) -> SignedAct:
        try:
            document = orjson.loads(from_b64url(text))
            scheme = document["scheme"]
            if scheme not in ("jws-detached", "http-message-signature"):
                raise ValueError(f"unknown scheme {scheme!r}")
            return cls(
                scheme,
                str(document["kid"]),
                from_b64url(document["signed"]),
                from_b64url(document["signature"]),
                from_b64url(document["body"]),
            )
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
            raise BadSignature(f"the signed act cannot be read: {error}") from error

    def refusal(self, trust: TrustStore, *, department: str | None = None) -> str | None:
        """Why the signature is not a department's over exactly these bytes (None: it is). With
        ``department``, it must be that department's."""
        key = trust.get(self.kid)
        if key is None:
            return f"signed with an unknown key {self.kid!r}"
        if key.owner not in {d.value for d in Department}:
            return f"signed with key {self.kid}, which is {key.owner!r}'s, not a department's"
        if department is not None and key.owner != department:
            return f"signed with {key.owner}'s key, not {department}'s"
        if self.scheme == "jws-detached" and not self.signed.endswith(b"." + b64url(self.body).encode()):
            return "the signed JWS input is not over this body"
        return trust.refusal(self.kid, self.signed, self.signature, owners={key.owner})


@dataclass(frozen=True)
class SignedCommand:
    """A command from a department's system whose signature verified."""

    name: str
    user: str
    department: Department
    roles: frozenset[Role]
    idempotency_key: str
    correlation_id: str | None
    if_match: int | None
    act: SignedAct


def sign_command(
    key: SigningKey,
    name: str,
    body: bytes,
    *,
    user: str,
    roles: list[Role | str],
    idempotency_key: str,
    correlation_id: str | None = None,
    if_match: int | None = None,
) -> bytes:
    """A department's system signs a command (``key.owner`` is the department): the value of
    the record's ``signature`` header, a compact JWS whose payload is ``body``, detached."""
    protected: dict[str, Any] = {
        "alg": "Ed25519",
        "kid": key.key_id,
        "typ": COMMAND_TYPE,
        "cmd": name,
        "idk": idempotency_key,
        "sub": user,
        "dept": str(Department(key.owner)),
        "roles": [str(Role(role)) for role in roles],
        "iat": int(time.time()),
    }
    if correlation_id is not None:
        protected["cid"] = correlation_id
    if if_match is not None:
        protected["ifm"] = if_match
    private = OKPKey.import_key(
        key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return jws.detach_content(jws.serialize_compact(protected, body, private, registry=REGISTRY)).encode()


def verify_command(signature: bytes, body: bytes, trust: TrustStore, *, at: float | None) -> SignedCommand:
    """The command a department's system signed, or BadSignature saying why it is not one."""
    try:
        text = signature.decode("ascii")
        protected_b64, payload_b64, signature_b64 = text.split(".")
    except (UnicodeDecodeError, ValueError) as error:
        raise BadSignature("the signature header is not a compact JWS") from error
    if payload_b64:
        raise BadSignature("the JWS must be detached: its payload is the record's value")
    try:
        header = orjson.loads(from_b64url(protected_b64))
        if not isinstance(header, dict):
            raise ValueError("its protected header is not an object")
        REGISTRY.check_header(header)
    except (JoseError, ValueError, orjson.JSONDecodeError) as error:
        raise BadSignature(f"the JWS cannot be read: {error}") from error
    if header.get("alg") != "Ed25519" or header.get("typ") != COMMAND_TYPE:
        raise BadSignature(f"a command is signed with Ed25519 (RFC 9864) as {COMMAND_TYPE}")
    kid, department = str(header.get("kid", "")), str(header["dept"])
    key = trust.get(kid)
    if key is None or key.owner != department:
        raise BadSignature(f"key {kid!r} is not a registered key of {department}")
    try:
        jws.deserialize_compact(text, _public_jwk(key.public), payload=body, registry=REGISTRY)
    except JoseError as error:
        raise BadSignature(f"the signature does not verify with {department}'s key {kid}") from error
    if not key.valid_at(at):
        raise BadSignature(f"key {kid} of {department} was not valid when the command was sent")
    try:
        roles = frozenset(Role(role) for role in header["roles"])
        dept = Department(department)
    except ValueError as error:
        raise BadSignature(f"the signed command names an unknown department or role: {error}") from error
    signed = f"{protected_b64}.{b64url(body)}".encode()
    return SignedCommand(
        name=str(header["cmd"]),
        user=str(header["sub"]),
        department=dept,
        roles=roles,
        idempotency_key=str(header["idk"]),
        correlation_id=str(header["cid"]) if "cid" in header else None,
        if_match=int(header["ifm"]) if "ifm" in header else None,
        act=SignedAct("jws-detached", kid, signed, from_b64url(signature_b64), body),
    )


def _public_jwk(public: Ed25519PublicKey) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(public))})
