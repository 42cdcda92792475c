"""Who is asking: bearer tokens (JWT, PyJWT) naming the user, department and roles, and what
each may read and write.

In production tokens come from the organization's identity provider and are verified with
its public keys (PEM in settings, a JWKS document, or a JWKS URL), picked by the token's key
id and type; ``iss`` and ``aud`` are required. A development signing key exists only for
``POLICYTRACK_ENV=dev``; a service refuses to start with it otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contract.codes import Department, Role
from shared.domain.access import (
    READ_ALL_DEPARTMENTS,
    READ_ALL_ROLES,
    WRITING_ROLES,
    Actor,
    can_read,
    can_read_everything,
    can_write,
)
from shared.keyset import KeySetPolicy, RemoteKeySet
from shared.settings import RuntimeSettings

DEV_SIGNING_KEY = "policytrack-development-signing-key-not-for-production"
DEV_ISSUER = "policytrack-dev"
AUDIENCE = "policytrack"
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_AUTH_", extra="ignore")

    public_keys: list[str] = Field(default_factory=list, description="PEM public keys of the identity provider")
    jwks: str | None = Field(default=None, description="a JWKS document (JSON) of the identity provider")
    jwks_url: str | None = None
    jwks_fetch: KeySetPolicy = Field(default_factory=KeySetPolicy)
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    issuer: str | None = Field(default=None, description="required outside development")
    audience: str = AUDIENCE
    dev_signing_key: str | None = None
    leeway_seconds: int = Field(default=30, ge=0, le=300)


class AuthError(Exception):
    """The token is missing, malformed, expired or not signed by a trusted key (401)."""


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for anything else."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class InsecureConfiguration(RuntimeError):
    """The service would trust tokens it should not (the development key outside development,
    no issuer, or no key at all)."""


def _family(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC:{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "OKP"
    return "other"


ALGORITHM_FAMILIES = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    "ES256": "EC:secp256r1",
    "ES384": "EC:secp384r1",
    "ES512": "EC:secp521r1",
    "EdDSA": "OKP",
}


VERIFIED_TOKENS_KEPT = 10_000


class TokenVerifier:
    """Verifies bearer tokens. A token that verified is remembered until it expires (at most
    ``VERIFIED_TOKENS_KEPT`` of them, the least recently used leaving first): a client sends the
    same token with every request, and checking its signature again each time is most of what
    an accepted request costs. The whole token is the key, so any other bytes are verified."""

    def __init__(
        self, auth: AuthSettings, runtime: RuntimeSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._auth = auth
        self._clock = clock
        self._verified: OrderedDict[str, Actor] = OrderedDict()
        self._dev = runtime.env == "dev"
        dev_key = auth.dev_signing_key or (DEV_SIGNING_KEY if self._dev else None)
        if dev_key is not None and not self._dev:
            raise InsecureConfiguration(
                "refusing to start: the development signing key is only allowed with POLICYTRACK_ENV=dev; "
                "configure POLICYTRACK_AUTH_PUBLIC_KEYS, POLICYTRACK_AUTH_JWKS or POLICYTRACK_AUTH_JWKS_URL instead"
            )
        self._pems = [load_pem_public_key(pem.encode()) for pem in auth.public_keys]
        self._jwks = jwt.PyJWKSet.from_json(auth.jwks) if auth.jwks else None
        self._remote = RemoteKeySet(auth.jwks_url, auth.jwks_fetch) if auth.jwks_url else None
        if dev_key is None and not self._pems and self._jwks is None and self._remote is None:
            raise InsecureConfiguration(
                "refusing to start: no token verification key; set POLICYTRACK_AUTH_PUBLIC_KEYS, "
                "POLICYTRACK_AUTH_JWKS or POLICYTRACK_AUTH_JWKS_URL (or POLICYTRACK_ENV=dev for the development key)"
            )
        if not self._dev and not auth.issuer:
            raise InsecureConfiguration("refusing to start: set POLICYTRACK_AUTH_ISSUER, the issuer tokens must name")
        self._dev_key = dev_key

    async def verify_fetching(self, token: str) -> Actor:
        """``verify``, after fetching the remote key set if the token's key id may be in a newer
        copy; the fetch never holds up the event loop."""
        if self._remote is not None and token not in self._verified:
            with contextlib.suppress(jwt.PyJWTError):
                kid = jwt.get_unverified_header(token).get("kid")
                if isinstance(kid, str):
                    await self._remote.ready_for(kid)
        return self.verify(token)

    def verify(self, token: str) -> Actor:
        """The token's actor, with the keys held now (a remote key set is never fetched here)."""
        known = self._verified.get(token)
        if known is not None and known.expires_at is not None and known.expires_at > self._clock():
            self._verified.move_to_end(token)
            return known
        self._verified.pop(token, None)
        actor = self._verify(token)
        self._verified[token] = actor
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return actor

    def _verify(self, token: str) -> Actor:
        claims = self._claims(token)
        try:
            return Actor(
                user=claims["sub"],
                department=claims["dept"],
                roles=frozenset(claims.get("roles", ())),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            raise AuthError(f"token lacks a valid sub, dept or roles claim: {error}") from error

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm == "HS256":
                if self._dev_key is None:
                    raise AuthError("HS256 tokens are only accepted in development")
                return self._decode(token, self._dev_key, "HS256", issuer=self._auth.issuer or DEV_ISSUER)
            if algorithm not in self._auth.algorithms or algorithm not in ASYMMETRIC:
                raise AuthError(f"tokens signed with {algorithm!r} are not accepted")
            keys = list(self._keys_for(algorithm, header.get("kid")))
            if not keys:
                raise AuthError(
                    f"no trusted {algorithm} key" + (f" with key id {header['kid']!r}" if header.get("kid") else "")
                )
            return self._try_each(token, algorithm, keys)
        except jwt.PyJWTError as error:
            raise AuthError(str(error)) from error

    def _keys_for(self, algorithm: str, kid: str | None) -> Iterable[Any]:
        """The trusted keys that could have signed a token of ``algorithm`` and ``kid``: keys of
        a key set by their id, and the configured PEM keys of the algorithm's type."""
        family = ALGORITHM_FAMILIES.get(algorithm)
        if kid is not None and self._jwks is not None:
            for jwk in self._jwks.keys:
                if jwk.key_id == kid and _family(jwk.key) == family:
                    yield jwk.key
        if kid is not None and self._remote is not None:
            fetched = self._remote.key(kid)
            if fetched is not None and _family(fetched.key) == family:
                yield fetched.key
        yield from (key for key in self._pems if _family(key) == family)

    def _try_each(self, token: str, algorithm: str, keys: list[Any]) -> dict[str, Any]:
        last: jwt.PyJWTError = jwt.InvalidSignatureError("no trusted key verified the token")
        for key in keys:
            try:
                return self._decode(token, key, algorithm, issuer=self._auth.issuer)
            except jwt.InvalidSignatureError as error:
                last = error
        raise last

    def _decode(self, token: str, key: Any, algorithm: str, *, issuer: str | None) -> dict[str, Any]:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=self._auth.audience,
            issuer=issuer,
            leeway=self._auth.leeway_seconds,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )


def mint_dev_token(
    user: str,
    department: Department | str,
    roles: list[Role | str],
    *,
    ttl_seconds: int = 8 * 3600,
    key: str = DEV_SIGNING_KEY,
) -> str:
    """A token signed with the development key (``policytrack token``)."""
    now = int(time.time())
    claims = {
        "sub": user,
        "dept": str(Department(department)),
        "roles": [str(Role(role)) for role in roles],
        "iss": DEV_ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, key, algorithm="HS256")


__all__ = [
    "READ_ALL_DEPARTMENTS",
    "READ_ALL_ROLES",
    "WRITING_ROLES",
    "Actor",
    "AuthError",
    "AuthSettings",
    "InsecureConfiguration",
    "TokenVerifier",
    "bearer_token",
    "can_read",
    "can_read_everything",
    "can_write",
    "mint_dev_token",
]
