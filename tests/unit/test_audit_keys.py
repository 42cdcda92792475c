"""The checkpoint signing key: its own file, owner-only from the first byte, with an id, and
rotation that leaves earlier checkpoints verifiable."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit.adapters.keys import TrustedKeys, keep_public, load_signing_key, rotate
from services.audit.domain.chain import checkpoint_message
from services.audit.settings import AuditSettings


@pytest.fixture
def permissive_umask() -> object:
    """With umask 0 a file written and then chmod-ed would be world-readable for a moment;
    the key must be 0600 even so."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_new_key_is_owner_only(tmp_path: Path, permissive_umask: object) -> None:
    path = tmp_path / "keys" / "audit" / "signing-key.pem"
    key = load_signing_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(key.key_id) == 16
    assert load_signing_key(path, create=True).key_id == key.key_id, "an existing key is kept"
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"], "no temporary file is left behind"


def test_production_never_makes_a_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_signing_key(tmp_path / "absent.pem", create=False)


def test_the_key_lives_apart_from_the_database(tmp_path: Path) -> None:
    settings = AuditSettings(runtime={"data_dir": tmp_path / "data", "keys_dir": tmp_path / "keys"})
    database = Path(settings.database_url().split("///", 1)[1])
    assert not settings.signing_key_file().is_relative_to(database.parent)
    assert not settings.signing_key_file().is_relative_to(tmp_path / "data")


def test_after_rotation_old_checkpoints_still_verify_by_key_id(tmp_path: Path) -> None:
    path, trusted_dir = tmp_path / "signing-key.pem", tmp_path / "trusted"
    old = load_signing_key(path, create=True)
    keep_public(old, trusted_dir)
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    old_signature = old.sign(checkpoint_message(10, "ab" * 32, moment))

    old_id, new_id = rotate(path, trusted_dir)
    new = load_signing_key(path, create=False)
    assert (old_id, new_id) == (old.key_id, new.key_id) and new_id != old_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = TrustedKeys.load(new, trusted_dir, [])
    assert keys.verifies(old_id, checkpoint_message(10, "ab" * 32, moment), old_signature)
    assert not keys.verifies(new_id, checkpoint_message(10, "ab" * 32, moment), old_signature)
    assert not keys.verifies("0" * 16, checkpoint_message(10, "ab" * 32, moment), old_signature), "unknown key id"
    assert {k["key_id"] for k in keys.published()} == {old_id, new_id}
