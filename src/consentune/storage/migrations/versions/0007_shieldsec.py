"""Shield: listening history that survives restarts (when a listener account became established).

Revision ID: 0007_shieldsec
Revises: 0007_consistency
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_shieldsec"
down_revision = "0007_consistency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listener_accounts") as batch:
        batch.add_column(sa.Column("established_us", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listener_accounts") as batch:
        batch.drop_column("established_us")
