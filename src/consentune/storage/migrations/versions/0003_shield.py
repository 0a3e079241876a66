"""Shield: listener accounts and sessions, and the log of challenge/block decisions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listener_accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("created_address", sa.String(45), nullable=False),
    )
    op.create_table(
        "listener_sessions",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("challenge_passed_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "shield_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("signals_json", sa.Text, nullable=False),
        sa.Column("lifted_us", sa.BigInteger, nullable=True),
        sa.Column("lifted_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_shield_decisions_subject", "shield_decisions", ["subject", "action"])


def downgrade() -> None:
    op.drop_table("shield_decisions")
    op.drop_table("listener_sessions")
    op.drop_table("listener_accounts")
