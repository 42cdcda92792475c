"""Bearer tokens in production: issuer and audience required, the key picked by id and type
(so mixed key sets and rotation work), and every classic forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.auth import Actor, AuthError, AuthSettings, InsecureConfiguration, TokenVerifier
from shared.settings import RuntimeSettings

ISSUER = "https://idp.example.gov.cn"
PROD = RuntimeSettings(env="prod")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def pem(private: Any) -> str:
    public: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "u-ndrc",
        "dept": "NDRC",
        "roles": ["supervisor"],
        "iss": ISSUER,
        "aud": "policytrack",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }


def sign(private: Any, algorithm: str, kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), private, algorithm=algorithm, headers={"kid": kid} if kid else None)


def verifier(**settings: Any) -> TokenVerifier:
    return TokenVerifier(AuthSettings(issuer=ISSUER, **settings), PROD)


def jwks(*entries: tuple[str, Any, str]) -> str:
    keys = []
    for kid, private, algorithm in entries:
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key()))
        keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
    return json.dumps({"keys": keys})


def test_a_mixed_pem_list_accepts_each_key_type() -> None:
    """RSA listed first used to make every ES256 token fail."""
    mixed = verifier(public_keys=[pem(RSA_KEY), pem(EC_KEY), pem(ED_KEY)])
    assert mixed.verify(sign(EC_KEY, "ES256")).user == "u-ndrc"
    assert mixed.verify(sign(RSA_KEY, "RS256")).user == "u-ndrc"
    assert mixed.verify(sign(ED_KEY, "EdDSA")).user == "u-ndrc"


def test_a_key_set_picks_the_key_by_id_so_rotation_works() -> None:
    new_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rotating = verifier(
        jwks=jwks(("2026-old", RSA_KEY, "RS256"), ("2026-new", new_rsa, "RS256"), ("ec-1", EC_KEY, "ES256"))
    )
    assert rotating.verify(sign(RSA_KEY, "RS256", kid="2026-old")).department == "NDRC"
    assert rotating.verify(sign(new_rsa, "RS256", kid="2026-new")).department == "NDRC"
    assert rotating.verify(sign(EC_KEY, "ES256", kid="ec-1")).department == "NDRC"
    with pytest.raises(AuthError, match="key id 'unknown'"):
        rotating.verify(sign(new_rsa, "RS256", kid="unknown"))
    with pytest.raises(AuthError):
        rotating.verify(sign(new_rsa, "RS256", kid="2026-old"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hs256_with(secret: bytes) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the public key PyJWT would refuse to make."""
    header, payload = _b64(b'{"alg":"HS256","typ":"JWT"}'), _b64(json.dumps(claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _unsigned() -> str:
    header = _b64(b'{"alg":"none","typ":"JWT"}')
    return f"{header}.{_b64(json.dumps(claims()).encode())}."


FORGERIES: dict[str, Callable[[], str]] = {
    "expired": lambda: sign(RSA_KEY, "RS256", exp=int(time.time()) - 3600),
    "not yet valid": lambda: sign(RSA_KEY, "RS256", nbf=int(time.time()) + 3600),
    "wrong audience": lambda: sign(RSA_KEY, "RS256", aud="another-system"),
    "wrong issuer": lambda: sign(RSA_KEY, "RS256", iss="https://evil.example.org"),
    "no issuer": lambda: jwt.encode({k: v for k, v in claims().items() if k != "iss"}, RSA_KEY, algorithm="RS256"),
    "no audience": lambda: jwt.encode({k: v for k, v in claims().items() if k != "aud"}, RSA_KEY, algorithm="RS256"),
    "alg none": _unsigned,
    "HS256 signed with the public key": lambda: _hs256_with(pem(RSA_KEY).encode()),
    "signed by another key": lambda: sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    "unknown kid": lambda: sign(RSA_KEY, "RS256", kid="nobody-knows"),
    "not a token": lambda: "not.a.token",
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forgeries_are_refused(name: str) -> None:
    strict = verifier(public_keys=[pem(EC_KEY)], jwks=jwks(("k-1", RSA_KEY, "RS256")))
    with pytest.raises(AuthError):
        strict.verify(FORGERIES[name]())


def test_outside_development_an_issuer_is_required() -> None:
    with pytest.raises(InsecureConfiguration, match="POLICYTRACK_AUTH_ISSUER"):
        TokenVerifier(AuthSettings(public_keys=[pem(RSA_KEY)]), PROD)


def test_the_token_expiry_is_known_to_the_service() -> None:
    expires = int(time.time()) + 120
    actor = verifier(public_keys=[pem(RSA_KEY)]).verify(sign(RSA_KEY, "RS256", exp=expires))
    assert actor.expires_at is not None and int(actor.expires_at.timestamp()) == expires


def test_a_verified_token_is_remembered_until_it_expires_and_other_bytes_are_verified() -> None:
    moment = [datetime.now(UTC)]
    checker = TokenVerifier(AuthSettings(issuer=ISSUER, public_keys=[pem(RSA_KEY)]), PROD, clock=lambda: moment[0])
    token = sign(RSA_KEY, "RS256")
    first = checker.verify(token)
    checked: list[str] = []
    original = checker._verify

    def spy(token: str) -> Actor:
        checked.append(token)
        return original(token)

    checker._verify = spy  # type: ignore[method-assign]  # a spy on what is verified
    assert checker.verify(token) == first and checked == [], "the same token is not checked again"
    with pytest.raises(AuthError):
        checker.verify(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert first.expires_at is not None
    moment[0] = first.expires_at + timedelta(seconds=1)
    checker.verify(token)
    assert checked[-1] == token, "past its expiry a remembered token is checked again (and PyJWT refuses it then)"
