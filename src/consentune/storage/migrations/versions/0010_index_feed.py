"""Identify: the shared fingerprint index's feed of changes (one row per add or removal, in commit order).
Organize: features by kind and write time (each worker's similarity index picks up what others wrote).

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
    op.create_index("ix_features_kind_created", "features", ["kind", "created_us"])


def downgrade() -> None:
    op.drop_index("ix_features_kind_created", table_name="features")
    op.drop_table("index_feed")
