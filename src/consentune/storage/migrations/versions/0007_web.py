"""A track rule may carry no answer: the track follows the artist's all-tracks choice again.

Revision ID: 0007_web
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_web"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_rules") as batch:
        batch.alter_column("allow", existing_type=sa.Boolean(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM consent_rules WHERE allow IS NULL")
    with op.batch_alter_table("consent_rules") as batch:
        batch.alter_column("allow", existing_type=sa.Boolean(), nullable=False)
