"""Content identification: possible re-uploads found at ingest.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "track_matches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("matched_track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("query_start_s", sa.Float, nullable=False),
        sa.Column("query_end_s", sa.Float, nullable=False),
        sa.Column("ref_start_s", sa.Float, nullable=False),
        sa.Column("ref_end_s", sa.Float, nullable=False),
        sa.Column("time_scale", sa.Float, nullable=False),
        sa.Column("pitch_semitones", sa.Float, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_track_matches_track", "track_matches", ["track_id"])
    op.create_index("ix_track_matches_matched", "track_matches", ["matched_track_id"])


def downgrade() -> None:
    op.drop_table("track_matches")
