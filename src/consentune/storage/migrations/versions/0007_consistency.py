"""Consistency: a consent version counter that every consent change moves.

Revision ID: 0007_consistency
Revises: 0008_claims
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_consistency"
down_revision = "0008_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "consent_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("consent_state")
