"""The one key machinery: each owner's signing key in its own file, owner-only from the first
byte, with an id; a trust store that knows whose each public key is and when it may sign; and
rotation that leaves what was signed before verifiable while a retired key vouches for nothing new."""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
import time
from pathlib import Path

import pytest

from services.audit.settings import AuditSettings
from services.notifications.bootstrap import sealing_key
from services.notifications.settings import NotificationsSettings
from shared.provenance.keys import InsecureKey, KeyFolder, TrustedKey, TrustStore, load_signing_key
from shared.settings import RuntimeSettings


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


def test_a_key_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    load_signing_key(path, create=True)
    path.chmod(0o644)
    with pytest.raises(InsecureKey, match="readable by others"):
        load_signing_key(path, create=False)


def test_production_never_makes_a_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_signing_key(tmp_path / "absent.pem", create=False)


def test_the_key_lives_apart_from_the_database(tmp_path: Path) -> None:
    settings = AuditSettings(runtime=RuntimeSettings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys"))
    database = Path(settings.database_url().split("///", 1)[1])
    assert not settings.signing_key_file().is_relative_to(database.parent)
    assert not settings.signing_key_file().is_relative_to(tmp_path / "data")


def test_the_trust_store_knows_whose_each_key_is_and_finds_a_key_published_later(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path / "keys")
    trust = keys.trust()
    assert trust.get("0" * 16) is None
    tasks = keys.signing_key("tasks", create=True)
    # Published a moment after an unknown id was looked for, it is trusted at its first use: a
    # department's first command signed with a new key was refused for two seconds.
    found = trust.get(tasks.key_id)
    assert found is not None and found.owner == "tasks"
    assert trust.refusal(tasks.key_id, b"m", tasks.sign(b"m"), owners={"tasks"}) is None
    assert "may not write" in (trust.refusal(tasks.key_id, b"m", tasks.sign(b"m"), owners={"audit"}) or "")
    assert "does not verify" in (trust.refusal(tasks.key_id, b"x", tasks.sign(b"m"), owners={"tasks"}) or "")
    assert trust.jwks("tasks")["keys"][0]["kid"] == tasks.key_id


def test_the_trust_store_sent_to_another_process_trusts_the_same_keys(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path / "keys")
    tasks = keys.signing_key("tasks", create=True)
    audit = KeyFolder(tmp_path / "elsewhere").signing_key("audit", create=True)
    given = TrustedKey(audit.key_id, audit.public_key, "audit", not_before=1.0, not_after=2e9)
    # A rebuild reads partitions in processes of their own: the store crosses as what it is made of.
    sent = pickle.loads(pickle.dumps(TrustStore(keys.trust_folder, extra=[given])))
    assert sent.refusal(tasks.key_id, b"m", tasks.sign(b"m"), owners={"tasks"}) is None
    assert sent.refusal(audit.key_id, b"m", audit.sign(b"m"), owners={"audit"}, at=10.0) is None
    assert "outside the window" in (sent.refusal(audit.key_id, b"m", audit.sign(b"m"), at=0.5) or "")


def test_a_key_filed_under_another_owner_is_not_that_owners(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path / "keys")
    notifications = keys.signing_key("notifications", create=True)
    record = keys.record_path("notifications", notifications.key_id)
    smuggled = keys.record_path("tasks", notifications.key_id)
    smuggled.parent.mkdir(parents=True)
    smuggled.write_bytes(record.read_bytes())
    trusted = keys.trust().get(notifications.key_id)
    assert trusted is not None and trusted.owner == "notifications"


def test_after_rotation_the_old_key_verifies_what_it_signed_and_nothing_after_its_grace(tmp_path: Path) -> None:
    keys = KeyFolder(tmp_path / "keys")
    old = keys.signing_key("audit", create=True)
    signed_before = old.sign(b"checkpoint 10")
    old_id, new_id = keys.rotate("audit", grace_seconds=60)
    new = load_signing_key(keys.signing_key_path("audit"), create=False, owner="audit")
    assert (old_id, new_id) == (old.key_id, new.key_id) and new_id != old_id
    assert stat.S_IMODE(keys.signing_key_path("audit").stat().st_mode) == 0o600
    trust = keys.trust()
    now = time.time()
    assert trust.refusal(old_id, b"checkpoint 10", signed_before, at=now - 10) is None
    assert trust.refusal(old_id, b"checkpoint 10", signed_before, at=now + 30) is None, "within the grace"
    assert "outside the window" in (trust.refusal(old_id, b"checkpoint 10", signed_before, at=now + 120) or "")
    assert "outside the window" in (trust.refusal(new_id, b"x", new.sign(b"x"), at=now - 10) or "")
    keys.retire("audit", old_id, at=now - 5)
    assert "outside the window" in (keys.trust().refusal(old_id, b"checkpoint 10", signed_before, at=now) or "")
    assert {k["kid"] for k in keys.trust().jwks("audit")["keys"]} == {old_id, new_id}


def test_the_notifications_sealing_key_is_never_readable_by_others(
    tmp_path: Path, permissive_umask: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28: the development sealing key was written, then chmod-ed; a crash between the
    two (here: the chmod failing) left it world-readable."""

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("crashed before chmod")

    settings = NotificationsSettings(runtime=RuntimeSettings(env="dev", data_dir=tmp_path))
    monkeypatch.setattr(Path, "chmod", crash)
    with contextlib.suppress(OSError):
        sealing_key(settings)
    path = settings.sealing_key_file()
    assert not path.exists() or stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.undo()
    assert sealing_key(settings) == sealing_key(settings), "the key is made once and kept"
    path.chmod(0o644)
    with pytest.raises(InsecureKey, match="readable by others"):
        sealing_key(settings)
