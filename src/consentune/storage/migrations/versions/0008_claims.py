"""Claims on copies found by identification, and each artist's claim policy.

Revision ID: 0008_claims
Revises: 0007_web
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_claims"
down_revision = "0007_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("copy_track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("original_track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("copy_artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("original_artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("copy_start_s", sa.Float, nullable=False),
        sa.Column("copy_end_s", sa.Float, nullable=False),
        sa.Column("original_start_s", sa.Float, nullable=False),
        sa.Column("original_end_s", sa.Float, nullable=False),
        sa.Column("time_scale", sa.Float, nullable=False),
        sa.Column("pitch_semitones", sa.Float, nullable=False),
        sa.Column("partial", sa.Boolean, nullable=False),
        sa.Column("dispute_reason", sa.String(500), nullable=True),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("opened_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("copy_track_id", "original_track_id", name="uq_claims_pair"),
    )
    op.create_index("ix_claims_copy", "claims", ["copy_track_id"])
    op.create_index("ix_claims_original_artist", "claims", ["original_artist_id", "status"])
    op.create_index("ix_claims_copy_artist", "claims", ["copy_artist_id", "status"])
    op.create_table(
        "claim_policies",
        sa.Column("artist_id", sa.String(32), sa.ForeignKey("artists.id"), primary_key=True),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("claim_policies")
    op.drop_table("claims")
