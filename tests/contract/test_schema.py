"""Alembic migrations produce exactly the schema the code declares, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from consentune.service import Consentune
from consentune.storage import migrate
from consentune.storage.tables import include_object, metadata


def test_migrations_match_tables(svc: Consentune) -> None:
    with svc.store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_migrate_is_idempotent(svc: Consentune) -> None:
    before = svc.ledger.size
    migrate(svc.store.engine)
    assert svc.ledger.size == before
