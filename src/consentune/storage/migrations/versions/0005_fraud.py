"""Fraud detection: account creation time on plays, stored alerts, flagged accounts per time window.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plays") as batch:
        batch.add_column(sa.Column("account_created_us", sa.BigInteger, nullable=True))
    op.create_table(
        "fraud_alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("raised_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("window_start_us", sa.BigInteger, nullable=False),
        sa.Column("window_end_us", sa.BigInteger, nullable=False),
        sa.Column("evidence_json", sa.Text, nullable=False),
    )
    op.create_table(
        "fraud_alert_tracks",
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("fraud_alerts.id"), primary_key=True),
        sa.Column("track_id", sa.String(32), primary_key=True),
    )
    op.create_index("ix_fraud_alert_tracks_track", "fraud_alert_tracks", ["track_id"])
    op.create_table(
        "fraud_flags",
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("fraud_alerts.id"), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.Column("until_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_fraud_flags_user", "fraud_flags", ["user_id"])


def downgrade() -> None:
    op.drop_table("fraud_flags")
    op.drop_table("fraud_alert_tracks")
    op.drop_table("fraud_alerts")
    with op.batch_alter_table("plays") as batch:
        batch.drop_column("account_created_us")
