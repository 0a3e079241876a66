"""Shield: sign-up verification of listener accounts and shared newcomer audio budgets.

Revision ID: 0009_cost
Revises: 0009_plays
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_cost"
down_revision = "0009_plays"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listener_accounts") as batch:
        batch.add_column(sa.Column("verified_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("verified_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("verified_subject", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_listener_accounts_verified_subject", ["verified_subject"])
    # accounts from before sign-up verification keep their standing
    op.execute("UPDATE listener_accounts SET verified_us = created_us, verified_kind = 'legacy'")
    op.create_table(
        "shield_budget_seen",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("hour", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("track", sa.String(32), primary_key=True),
        sa.Column("upto_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "shield_budget_totals",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("hour", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("total_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_shield_budget_totals_hour", "shield_budget_totals", ["hour"])
    op.create_table(
        "shield_vouchers",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("member", sa.String(48), primary_key=True),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shield_vouchers")
    op.drop_index("ix_shield_budget_totals_hour", "shield_budget_totals")
    op.drop_table("shield_budget_totals")
    op.drop_table("shield_budget_seen")
    with op.batch_alter_table("listener_accounts") as batch:
        batch.drop_constraint("uq_listener_accounts_verified_subject", type_="unique")
        batch.drop_column("verified_subject")
        batch.drop_column("verified_kind")
        batch.drop_column("verified_us")
