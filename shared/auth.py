"""Who is asking: bearer tokens (JWT, PyJWT) naming the user, department and roles.

In production tokens come from the organization's identity provider and are verified with
its public keys (from settings or a JWKS URL). A development signing key exists only for
``POLICYTRACK_ENV=dev``; a service refuses to start with it otherwise.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contract.codes import Department, Role
from shared.settings import RuntimeSettings

DEV_SIGNING_KEY = "policytrack-development-signing-key-not-for-production"
DEV_ISSUER = "policytrack-dev"
AUDIENCE = "policytrack"
READ_ALL_DEPARTMENTS = frozenset({Department.SC, Department.JILIN, Department.NDRC, Department.NAO})
READ_ALL_ROLES = frozenset({Role.SUPERVISOR, Role.APPROVER, Role.AUDITOR, Role.ADMIN})


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_AUTH_", extra="ignore")

    public_keys: list[str] = Field(default_factory=list, description="PEM public keys of the identity provider")
    jwks_url: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    issuer: str | None = None
    audience: str = AUDIENCE
    dev_signing_key: str | None = None
    leeway_seconds: int = 30


class Actor(BaseModel):
    """The authenticated caller: whose name every event they cause carries."""

    model_config = ConfigDict(frozen=True)

    user: str = Field(min_length=1)
    department: Department
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class AuthError(Exception):
    """The token is missing, malformed, expired or not signed by a trusted key (401)."""


class InsecureConfiguration(RuntimeError):
    """The service would trust the development key outside development."""


class TokenVerifier:
    def __init__(self, auth: AuthSettings, runtime: RuntimeSettings) -> None:
        self._auth = auth
        self._jwks = jwt.PyJWKClient(auth.jwks_url, cache_keys=True) if auth.jwks_url else None
        dev_key = auth.dev_signing_key or (DEV_SIGNING_KEY if runtime.env == "dev" else None)
        if dev_key is not None and runtime.env != "dev":
            raise InsecureConfiguration(
                "refusing to start: the development signing key is only allowed with POLICYTRACK_ENV=dev; "
                "configure POLICYTRACK_AUTH_PUBLIC_KEYS or POLICYTRACK_AUTH_JWKS_URL instead"
            )
        if dev_key is None and not auth.public_keys and self._jwks is None:
            raise InsecureConfiguration(
                "refusing to start: no token verification key; set POLICYTRACK_AUTH_PUBLIC_KEYS or "
                "POLICYTRACK_AUTH_JWKS_URL (or POLICYTRACK_ENV=dev for the development key)"
            )
        self._dev_key = dev_key

    def verify(self, token: str) -> Actor:
        claims = self._claims(token)
        try:
            return Actor(user=claims["sub"], department=claims["dept"], roles=frozenset(claims.get("roles", ())))
        except (KeyError, ValidationError) as error:
            raise AuthError(f"token lacks a valid sub, dept or roles claim: {error}") from error

    def _claims(self, token: str) -> dict[str, Any]:
        options = {"require": ["exp", "sub"]}
        common = {"audience": self._auth.audience, "leeway": self._auth.leeway_seconds, "options": options}
        if self._auth.issuer:
            common["issuer"] = self._auth.issuer
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "HS256":
                if self._dev_key is None:
                    raise AuthError("HS256 tokens are only accepted in development")
                return jwt.decode(token, self._dev_key, algorithms=["HS256"], **common)
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                return jwt.decode(token, key, algorithms=self._auth.algorithms, **common)
            last_error: Exception = AuthError("no public key accepted the token")
            for pem in self._auth.public_keys:
                try:
                    return jwt.decode(token, pem, algorithms=self._auth.algorithms, **common)
                except jwt.InvalidSignatureError as error:
                    last_error = error
            raise last_error
        except jwt.PyJWTError as error:
            raise AuthError(str(error)) from error


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


def reads_everything(actor: Actor) -> bool:
    """Supervisors, approvers, auditors, admins and the implementing and approving
    governments see every task; other departments see the tasks they lead or support."""
    return actor.department in READ_ALL_DEPARTMENTS or actor.has(*READ_ALL_ROLES)
