"""One row per play event: (user, played at, track) is unique, so a re-run import adds nothing twice.

The unique index replaces ``ix_plays_user_time`` (same leading columns, so the
per-listener time scans keep their index).  Rows that already repeat an event
are folded into the oldest copy first; the reach rollups are left as they are
(they counted those repeats when they arrived).

Revision ID: 0009_plays
Revises: 0009_wm
"""

from alembic import op

revision = "0009_plays"
down_revision = "0009_wm"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM plays WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
        "(PARTITION BY user_id, played_us, track_id ORDER BY id) AS n FROM plays) AS ranked WHERE n > 1)"
    )
    op.drop_index("ix_plays_user_time", table_name="plays")
    op.create_index("ux_plays_event", "plays", ["user_id", "played_us", "track_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_plays_event", table_name="plays")
    op.create_index("ix_plays_user_time", "plays", ["user_id", "played_us"])
