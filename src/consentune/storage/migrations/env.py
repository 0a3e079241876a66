"""Alembic environment: runs on the connection handed over by consentune.storage.migrate."""

from __future__ import annotations

from alembic import context

from consentune.storage.tables import include_object, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
