"""``policytrack token`` prints a development token that a dev-mode service accepts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from policytrack.cli import app
from shared.auth import AuthError, AuthSettings, TokenVerifier
from shared.settings import RuntimeSettings


def test_token_names_user_department_and_roles() -> None:
    result = CliRunner().invoke(
        app, ["token", "--user", "u-1", "--department", "NDRC", "--role", "supervisor", "--role", "auditor"]
    )
    assert result.exit_code == 0, result.output
    actor = TokenVerifier(AuthSettings(), RuntimeSettings(env="dev")).verify(result.output.strip())
    assert (actor.user, actor.department, set(actor.roles)) == ("u-1", "NDRC", {"supervisor", "auditor"})


def test_unknown_department_or_role_is_refused() -> None:
    assert CliRunner().invoke(app, ["token", "-u", "x", "-d", "MARS", "-r", "supervisor"]).exit_code != 0
    assert CliRunner().invoke(app, ["token", "-u", "x", "-d", "SC", "-r", "emperor"]).exit_code != 0


def test_an_expired_or_foreign_token_is_refused() -> None:
    verifier = TokenVerifier(AuthSettings(), RuntimeSettings(env="dev"))
    expired = CliRunner().invoke(app, ["token", "-u", "x", "-d", "SC", "-r", "approver", "--ttl", "-3600"])
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(expired.output.strip())
    from shared.auth import mint_dev_token

    with pytest.raises(AuthError, match="Signature"):
        verifier.verify(mint_dev_token("x", "SC", ["approver"], key="someone-elses-key-of-sufficient-length"))


def test_without_dev_mode_a_verification_key_is_required() -> None:
    from shared.auth import InsecureConfiguration

    with pytest.raises(InsecureConfiguration, match="no token verification key"):
        TokenVerifier(AuthSettings(), RuntimeSettings(env="prod"))


def test_production_tokens_verify_with_the_identity_providers_public_key() -> None:
    import time

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(
        AuthSettings(public_keys=[public_pem], issuer="https://idp.example.gov.cn"), RuntimeSettings(env="prod")
    )
    claims = {
        "sub": "u-9",
        "dept": "MOFCOM",
        "roles": ["supporter"],
        "aud": "policytrack",
        "exp": time.time() + 60,
        "iss": "https://idp.example.gov.cn",
    }
    actor = verifier.verify(jwt.encode(claims, key, algorithm="EdDSA"))
    assert (actor.user, actor.department) == ("u-9", "MOFCOM")
    from shared.auth import mint_dev_token

    with pytest.raises(AuthError, match="only accepted in development"):
        verifier.verify(mint_dev_token("x", "SC", ["approver"]))
