"""Storage adapters: SQLAlchemy Core tables, Alembic migrations, SqlStore, SqlJobStore."""

from consentune.storage.engine import make_engine, migrate
from consentune.storage.jobs import SqlJobStore
from consentune.storage.sql import SqlStore

__all__ = ["SqlJobStore", "SqlStore", "make_engine", "migrate"]
