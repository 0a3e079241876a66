"""Free-form tags on tracks (artist-supplied), used for cold-start recommendations.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "track_tags",
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_track_tags_tag", "track_tags", ["tag"])


def downgrade() -> None:
    op.drop_table("track_tags")
