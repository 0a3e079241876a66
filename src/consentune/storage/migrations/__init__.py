"""Alembic migration scripts for Consentune's schema."""
