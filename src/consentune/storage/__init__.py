"""Storage adapters: SQLAlchemy Core tables, Alembic migrations, SqlStore."""

from consentune.storage.engine import make_engine, migrate
from consentune.storage.sql import SqlStore

__all__ = ["SqlStore", "make_engine", "migrate"]
