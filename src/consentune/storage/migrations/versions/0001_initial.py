"""Initial schema: terms, catalogue, consent, features, API keys, ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_US = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "terms",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kinds_json", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("published_us", _US, nullable=False),
    )
    op.create_table(
        "artists",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("terms_version", sa.Integer, sa.ForeignKey("terms.version"), nullable=False),
        sa.Column("created_us", _US, nullable=False),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("sample_rate", sa.Integer, nullable=False),
        sa.Column("channels", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_us", _US, nullable=False),
        sa.UniqueConstraint("artist_id", "content_sha256", name="uq_tracks_artist_content"),
    )
    op.create_index("ix_tracks_content", "tracks", ["content_sha256"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("received_us", _US, nullable=False),
    )
    op.create_index("ix_uploads_track_id", "uploads", ["track_id"])
    op.create_table(
        "consent_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("allow", sa.Boolean, nullable=False),
        sa.Column("valid_from_us", _US, nullable=True),
        sa.Column("valid_until_us", _US, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_us", _US, nullable=False),
    )
    op.create_index("ix_consent_rules_artist", "consent_rules", ["artist_id", "purpose"])
    op.create_table(
        "purge_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), nullable=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purged", sa.Integer, nullable=False),
        sa.Column("created_us", _US, nullable=False),
        sa.Column("finished_us", _US, nullable=True),
    )
    op.create_table(
        "features",
        sa.Column("track_id", sa.String(32), sa.ForeignKey("tracks.id"), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_us", _US, nullable=False),
    )
    op.create_index("ix_features_purpose", "features", ["purpose", "track_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("artist_id", sa.String(32), sa.ForeignKey("artists.id"), nullable=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_us", _US, nullable=False),
        sa.Column("revoked_us", _US, nullable=True),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("track_id", sa.String(32), nullable=True),
        sa.Column("purpose", sa.String(64), nullable=True),
    )
    op.create_index("ix_ledger_entries_track", "ledger_entries", ["track_id", "seq"])
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("writes", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "state": b"", "writes": 0}])
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_us", _US, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ledger_checkpoints",
        "ledger_head",
        "ledger_nodes",
        "ledger_entries",
        "api_keys",
        "features",
        "purge_jobs",
        "consent_rules",
        "uploads",
        "tracks",
        "artists",
        "terms",
    ):
        op.drop_table(table)
