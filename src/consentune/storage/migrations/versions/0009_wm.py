"""Shield: which stream each watermark serial was embedded in (serial -> listener, track, time).

Revision ID: 0009_wm
Revises: 0009_usage
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_wm"
down_revision = "0009_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_marks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(48), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=True),
        sa.Column("track_id", sa.String(32), nullable=False),
        sa.Column("issued_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_stream_marks_serial", "stream_marks", ["serial"])


def downgrade() -> None:
    op.drop_index("ix_stream_marks_serial", table_name="stream_marks")
    op.drop_table("stream_marks")
