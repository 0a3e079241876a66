"""Ledger sequencer: a queue of acknowledged appends, batch-to-index map, audit marks.

Revision ID: 0007_ledger
Revises: 0007_shieldsec
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_ledger"
down_revision = "0007_shieldsec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("queued_us", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,  # ids are tickets: never reuse one after the queue empties
    )
    op.create_table(
        "ledger_batches",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "ledger_audits",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("audited_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("ledger_audits", "ledger_batches", "ledger_queue"):
        op.drop_table(table)
