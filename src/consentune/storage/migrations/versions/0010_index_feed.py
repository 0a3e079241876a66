"""Identify: the shared fingerprint index's feed of changes (one row per add or removal, in commit order).

Revision ID: 0010_index_feed
Revises: 0009_cost
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_index_feed"
down_revision = "0009_cost"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_feed",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("track_id", sa.String(32), nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("index_feed")
