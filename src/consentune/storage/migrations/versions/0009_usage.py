"""What happened to each artist's music: ledger entries per day, purpose and decision, and refusals.

Both tables are filled as the ledger integrates entries; they count from this
upgrade on (the log itself is unchanged, so older uses stay in receipts).

Revision ID: 0009_usage
Revises: 0007_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_usage"
down_revision = "0007_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("artist_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("decision", sa.String(16), primary_key=True),
        sa.Column("entries", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "usage_refusals",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("artist_id", sa.String(32), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("track_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_usage_refusals_artist", "usage_refusals", ["artist_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_usage_refusals_artist", table_name="usage_refusals")
    op.drop_table("usage_refusals")
    op.drop_table("usage_daily")
