"""Many workers: leases (the scheduler's leader and each periodic job's next due time).

Revision ID: 0007_workers
Revises: 0007_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_workers"
down_revision = "0007_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("until_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
