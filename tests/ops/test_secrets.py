"""Shared secrets: two machines with their own data folders sign and keep sessions alike; production never generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.errors import ConfigError, InvalidInput
from consentune.ledger import verify_checkpoint
from consentune.service import open_service
from tests.cli import run


def _settings(tmp_path: Path, host: str, database_url: str, **extra: object) -> Settings:
    return Settings(home=tmp_path / host, database_url=database_url, **extra)  # type: ignore[arg-type]


def test_production_refuses_to_start_without_a_secrets_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_service(_settings(tmp_path, "a", f"sqlite:///{tmp_path / 'c.db'}", env="production"))
    assert "CONSENTUNE_SECRETS_DIR" in caught.value.message and "secrets init" in caught.value.hint
    assert not (tmp_path / "a" / "ledger-signing.key").exists()


def test_production_refuses_missing_secret_files_and_creates_none(tmp_path: Path) -> None:
    folder = tmp_path / "mounted"
    folder.mkdir()
    settings = _settings(tmp_path, "a", f"sqlite:///{tmp_path / 'c.db'}", env="production", secrets_dir=folder)
    with pytest.raises(ConfigError) as caught:
        open_service(settings)
    assert "ledger-signing.key" in caught.value.message and "shield.secret" in caught.value.message
    assert list(folder.iterdir()) == []


def test_the_env_mode_is_checked() -> None:
    with pytest.raises(InvalidInput, match="CONSENTUNE_ENV"):
        Settings.from_env({"CONSENTUNE_ENV": "prod"})


def test_two_hosts_share_one_signer_and_session_key(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mounted"
    monkeypatch.setenv("CONSENTUNE_HOME", str(tmp_path / "cli-home"))
    code, out, err = run(capsys, "secrets", "init", str(folder))
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["ledger-signing.key", "shield.secret"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
    first = (folder / "shield.secret").read_bytes()
    assert run(capsys, "secrets", "init", str(folder))[0] == 0  # idempotent: existing secrets are kept
    assert (folder / "shield.secret").read_bytes() == first
    a = open_service(_settings(tmp_path, "host-a", database_url, env="production", secrets_dir=folder))
    b = open_service(_settings(tmp_path, "host-b", database_url, env="production", secrets_dir=folder))
    try:
        assert a.ledger.verifier_key == b.ledger.verifier_key and a.ledger.verifier_key in out
        assert a.session_key == b.session_key
        assert not (tmp_path / "host-a" / "ledger-signing.key").exists()
        assert not (tmp_path / "host-b" / "shield.secret").exists()
        cp = a.ledger.checkpoint()
        assert verify_checkpoint(cp.note, b.ledger.verifier_key).size == cp.size
    finally:
        a.close()
        b.close()
