"""RFC 9421 HTTP Message Signatures on command requests (the ``http-message-signatures``
library): a department's system may sign what it sends over HTTP with its registered key, and
must when the deployment says so. The events the command causes keep the signature base and the
signature, so the department's act can be shown later with its public key alone."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

import http_sf
from fastapi import Request
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from shared.contract.codes import Department
from shared.http.problems import Problem
from shared.provenance.acts import SignedAct
from shared.provenance.keys import SigningKey, TrustStore

COVERED = ("@method", "@path", "content-digest")
"""What a command's signature must cover: the route (which command, which aggregate) and the body."""
MAX_AGE = datetime.timedelta(minutes=5)


@dataclass
class _Message:
    """A request as the library reads it."""

    method: str
    url: str
    headers: MutableMapping[str, str] | Mapping[str, str]


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def resolve_public_key(self, key_id: str) -> object:
        key = self._trust.get(key_id)
        return None if key is None else key.public

    def resolve_private_key(self, key_id: str) -> object:
        raise NotImplementedError("the service verifies, it never signs for a department")


async def signed_act(
    request: Request, trust: TrustStore, department: Department, *, required: bool
) -> SignedAct | None:
    """The department's signature of this request, verified; None when it carries none and
    none is required. A signature that does not hold, or is not the caller's department's, is
    refused (401, 403), as is a missing one where the department must sign (401)."""
    if "signature-input" not in request.headers:
        if required:
            raise Problem(
                401,
                f"{department} signs its commands: an RFC 9421 signature with its registered key",
                field="Signature",
            )
        return None
    body = await request.body()
    message = _Message(request.method, str(request.url), request.headers)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(trust))
    try:
        results = verifier.verify(message, require_components=COVERED, body=body, max_age=MAX_AGE)
    except (InvalidSignature, HTTPMessageSignaturesException) as error:
        raise Problem(401, f"the request's signature does not hold: {error}", field="Signature") from error
    if len(results) != 1:
        raise Problem(401, "a command request carries one signature", field="Signature")
    result = results[0]
    kid = str(result.parameters["keyid"])
    key = trust.get(kid)
    if key is None or key.owner != department:
        raise Problem(403, f"the request is signed with key {kid}, which is not {department}'s", field="Signature")
    base = "\n".join(f"{name}: {value}" for name, value in result.covered_components.items()).encode()
    act = SignedAct("http-message-signature", kid, base, _signature_bytes(request, result.label), body)
    refusal = act.refusal(trust, department=department)
    if refusal is not None:  # the library verified it: its base and ours must be the same bytes
        raise Problem(401, f"the request's signature does not hold: {refusal}", field="Signature")
    return act


def _signature_bytes(request: Request, label: str) -> bytes:
    signatures = http_sf.parse(request.headers["signature"].encode(), tltype="dictionary")
    member = signatures.get(label) if isinstance(signatures, dict) else None
    value = member[0] if isinstance(member, tuple) else None
    if not isinstance(value, bytes):
        raise Problem(401, "the Signature header cannot be read", field="Signature")
    return value


def sign_request(key: SigningKey, method: str, url: str, headers: MutableMapping[str, str], body: bytes) -> None:
    """A department's system signs a command request with its key (adds Content-Digest,
    Signature-Input and Signature to ``headers``)."""
    message = _Message(method.upper(), url, headers)

    class _Own(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id: str) -> object:
            return key.private

    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Own()).sign(
        message, key_id=key.key_id, covered_component_ids=COVERED[:2], body=body
    )
