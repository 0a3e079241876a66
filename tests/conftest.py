"""Shared fixtures: a wired service on SQLite or PostgreSQL, real audio, shared data paths.

PostgreSQL comes from CONSENTUNE_TEST_POSTGRES_URL (default: the local
trust-auth server, database ``test``).  Each test gets its own schema, so
tests never see each other's rows.  When the server is unreachable the
PostgreSQL half skips on a developer machine and FAILS under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from consentune.config import Settings
from consentune.service import Consentune, open_service

POSTGRES_URL = os.environ.get("CONSENTUNE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping (or failing in CI) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared data {path} is absent (it sits beside the repo in CI)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _postgres_or_skip() -> None:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any driver or network failure
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema, dropped afterwards."""
    _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'consentune.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def svc(database_url: str, tmp_path: Path) -> Iterator[Consentune]:
    service = open_service(Settings(home=tmp_path / "home", database_url=database_url))
    yield service
    service.close()


@pytest.fixture
def sqlite_svc(tmp_path: Path) -> Iterator[Consentune]:
    service = open_service(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    yield service
    service.close()


@pytest.fixture(scope="session")
def audio_files() -> dict[str, bytes]:
    """Three seconds of synthesized music in each accepted format (real encoders)."""
    from consentune.demo.synth import SongSpec, encode, synthesize

    out = {}
    for i, fmt in enumerate(("wav", "flac", "ogg-vorbis", "opus", "mp3")):
        rate = 48_000 if fmt == "opus" else 44_100
        out[fmt] = encode(synthesize(SongSpec(seed=100 + i, duration_s=3.0, sample_rate=rate)), rate, format=fmt)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder for CLI runs (SQLite inside it), via CONSENTUNE_HOME."""
    monkeypatch.setenv("CONSENTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONSENTUNE_DATABASE_URL", raising=False)
    return tmp_path
