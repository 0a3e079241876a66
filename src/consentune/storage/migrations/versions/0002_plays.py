"""Play events: the shared listening-data schema, read only through the gate.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plays",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("track_id", sa.String(32), nullable=False),
        sa.Column("played_us", sa.BigInteger, nullable=False),
        sa.Column("ms_played", sa.Integer, nullable=False),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
    )
    op.create_index("ix_plays_track_time", "plays", ["track_id", "played_us"])
    op.create_index("ix_plays_user_time", "plays", ["user_id", "played_us"])


def downgrade() -> None:
    op.drop_table("plays")
