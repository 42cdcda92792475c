"""What ``policytrack verify-act`` checks, with public keys alone: that the department's key
signed exactly the command an event came from, and that the event's record is its writer's
(the writer's proof closes a chain that holds it)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.provenance.acts import BadSignature, SignedAct
from shared.provenance.gate import ProofGate, Verdict
from shared.provenance.keys import TrustedKey, TrustStore


@dataclass(frozen=True)
class LoggedRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @classmethod
    def of(cls, shown: dict[str, Any]) -> LoggedRecord:
        return cls(
            shown["topic"],
            int(shown["partition"]),
            int(shown["offset"]),
            int(shown["timestamp"]),
            _bytes(shown["key"]),
            _bytes(shown["value"]),
            tuple((str(name), _bytes(value)) for name, value in shown["headers"]),
        )


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(frozen=True)
class ActFindings:
    event: dict[str, Any]
    writer: Verdict
    act: SignedAct | None
    command_refusal: str | None
    """Why the command's signature is not its department's (None when it is, or when unsigned)."""
    signer: str | None

    @property
    def proven(self) -> bool:
        return self.writer.ok and self.act is not None and self.command_refusal is None


def trust_of(key_sets: Iterable[dict[str, Any]]) -> TrustStore:
    """A trust store of the given JSON Web Key Sets only (nothing read from any folder)."""
    keys = [TrustedKey.from_jwk(key) for key_set in key_sets for key in key_set.get("keys", [])]
    return TrustStore(Path("/nonexistent/policytrack-trust"), keys)


def check(shown: dict[str, Any], trust: TrustStore) -> ActFindings:
    """``shown`` is what ``GET /v1/audit/acts/{id}`` answers."""
    records = [LoggedRecord.of(record) for record in shown["records"]]
    judged = ProofGate(trust).admit(records, complete=True) if records else []
    writer = judged[0][1] if judged else Verdict(refusal="the trail holds no record of it")
    event = shown["event"]
    signed = event.get("signedcommand")
    if not signed:
        return ActFindings(event, writer, None, None, None)
    try:
        act = SignedAct.decode(signed)
    except BadSignature as error:
        return ActFindings(event, writer, None, str(error), None)
    key = trust.get(act.kid)
    refusal = act.refusal(trust, department=event.get("actordept"))
    return ActFindings(event, writer, act, refusal, key.owner if key else None)
