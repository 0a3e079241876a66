"""Starting safely: keys and secrets are whole or refused, and several workers may start at once.

Workers are separate OS processes opening one fresh database (a fresh
PostgreSQL schema, or a fresh SQLite file) and one fresh data folder.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from consentune.config import Settings
from consentune.errors import InvalidInput
from consentune.secretfile import create_private_file
from consentune.service import open_service

WORKERS = 4


def _head() -> str:
    """The newest revision shipped in the package's migrations."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(resources.files("consentune.storage") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _start(settings: Settings) -> None:
    open_service(settings).close()


def test_workers_starting_at_once_on_a_fresh_database_migrate_once(database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_start, args=(settings,)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0] * WORKERS
    svc = open_service(settings)
    try:
        with svc.store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
        assert list(svc.consent.all_terms()) == [1]  # the shipped terms, published once
        assert svc.ledger.size == 1 and svc.ledger.audit().ok
        secret = svc.settings.shield_secret_path.read_bytes()
        assert len(secret) == 32 and stat.S_IMODE(os.stat(svc.settings.shield_secret_path).st_mode) == 0o600
        assert [p.name for p in svc.settings.home.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        svc.close()


@pytest.mark.parametrize("content", [b"", b"\x00" * 16, b"\x01" * 33])
def test_a_shield_secret_that_is_empty_or_the_wrong_size_is_refused(fresh: Settings, content: bytes) -> None:
    create_private_file(fresh.shield_secret_path, content)
    with pytest.raises(InvalidInput, match="shield secret") as caught:
        open_service(fresh)
    assert "delete" in caught.value.hint


@pytest.mark.parametrize("content", [b"", b"PRIVATE+KEY+consentune.local/ledger+", b"\xff\xfe"])
def test_an_empty_or_malformed_ledger_key_is_refused(fresh: Settings, content: bytes) -> None:
    create_private_file(fresh.key_path, content)
    with pytest.raises(InvalidInput, match="key file"):
        open_service(fresh)


def test_a_secret_readable_by_others_is_refused(fresh: Settings) -> None:
    open_service(fresh).close()
    os.chmod(fresh.shield_secret_path, 0o644)
    with pytest.raises(InvalidInput, match="mode 644"):
        open_service(fresh)


def test_private_files_are_published_whole_and_the_first_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret"
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / ".secret.dead01.tmp").write_bytes(b"")  # what a crash mid-write leaves: ignored
    assert create_private_file(path, b"first") is True
    assert create_private_file(path, b"second") is False
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [".secret.dead01.tmp", "secret"]  # no temp of ours left


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
