"""Batch jobs: job and task state, and idempotency keys for ledger appends.

Revision ID: 0007_jobs
Revises: 0007_reqpaths
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_jobs"
down_revision = "0007_reqpaths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_once",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("batch_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("tasks", sa.Integer, nullable=False),
        sa.Column("tracks", sa.Integer, nullable=False),
        sa.Column("driver", sa.String(200), nullable=True),
        sa.Column("heartbeat_us", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "job_tasks",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tracks_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("compute_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cpu_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("node", sa.String(200), nullable=True),
        sa.Column("finished_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_job_tasks_status", "job_tasks", ["job_id", "status"])


def downgrade() -> None:
    op.drop_table("job_tasks")
    op.drop_table("jobs")
    op.drop_table("ledger_once")
