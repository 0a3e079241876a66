"""SQLAlchemy Core tables.  Times are integer microseconds since the Unix epoch (UTC)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

terms = Table(
    "terms",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("kinds_json", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("published_us", BigInteger, nullable=False),
)

artists = Table(
    "artists",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("terms_version", Integer, ForeignKey("terms.version"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("artist_id", String(32), ForeignKey("artists.id"), nullable=False),
    Column("title", String(300), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("format", String(16), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("artist_id", "content_sha256", name="uq_tracks_artist_content"),
    Index("ix_tracks_content", "content_sha256"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("track_id", String(32), ForeignKey("tracks.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("received_us", BigInteger, nullable=False),
)

consent_rules = Table(
    "consent_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artist_id", String(32), ForeignKey("artists.id"), nullable=False),
    Column("track_id", String(32), ForeignKey("tracks.id"), nullable=True),
    Column("purpose", String(64), nullable=False),
    Column("allow", Boolean, nullable=False),
    Column("valid_from_us", BigInteger, nullable=True),
    Column("valid_until_us", BigInteger, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_consent_rules_artist", "artist_id", "purpose"),
)

purge_jobs = Table(
    "purge_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artist_id", String(32), ForeignKey("artists.id"), nullable=False),
    Column("track_id", String(32), ForeignKey("tracks.id"), nullable=True),
    Column("purpose", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("purged", Integer, nullable=False, default=0),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=True),
)

features = Table(
    "features",
    metadata,
    Column("track_id", String(32), ForeignKey("tracks.id"), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("purpose", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_features_purpose", "purpose", "track_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("artist_id", String(32), ForeignKey("artists.id"), nullable=True),
    Column("label", String(200), nullable=False, default=""),
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("track_id", String(32), nullable=True),
    Column("purpose", String(64), nullable=True),
    Index("ix_ledger_entries_track", "track_id", "seq"),
)

ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("writes", BigInteger, nullable=False),
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

plays = Table(
    "plays",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(64), nullable=False),
    Column("track_id", String(32), nullable=False),
    Column("played_us", BigInteger, nullable=False),
    Column("ms_played", Integer, nullable=False),
    Column("ip", String(45), nullable=True),
    Column("device_id", String(128), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("country", String(2), nullable=True),
    Column("account_created_us", BigInteger, nullable=True),
    Index("ix_plays_track_time", "track_id", "played_us"),
    Index("ix_plays_user_time", "user_id", "played_us"),
)

listener_accounts = Table(
    "listener_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("created_address", String(45), nullable=False),
)

listener_sessions = Table(
    "listener_sessions",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("account_id", String(32), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("address", String(45), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("challenge_passed_us", BigInteger, nullable=True),
)

shield_decisions = Table(
    "shield_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("action", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("signals_json", Text, nullable=False),
    Column("lifted_us", BigInteger, nullable=True),
    Column("lifted_by", String(100), nullable=True),
    Index("ix_shield_decisions_subject", "subject", "action"),
)

track_tags = Table(
    "track_tags",
    metadata,
    Column("track_id", String(32), ForeignKey("tracks.id"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_track_tags_tag", "tag"),
)

fraud_alerts = Table(
    "fraud_alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("score", Float, nullable=False),
    Column("raised_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("window_start_us", BigInteger, nullable=False),
    Column("window_end_us", BigInteger, nullable=False),
    Column("evidence_json", Text, nullable=False),
)

fraud_alert_tracks = Table(
    "fraud_alert_tracks",
    metadata,
    Column("alert_id", String(64), ForeignKey("fraud_alerts.id"), primary_key=True),
    Column("track_id", String(32), primary_key=True),
    Index("ix_fraud_alert_tracks_track", "track_id"),
)

fraud_flags = Table(
    "fraud_flags",
    metadata,
    Column("alert_id", String(64), ForeignKey("fraud_alerts.id"), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("since_us", BigInteger, nullable=False),
    Column("until_us", BigInteger, nullable=False),
    Index("ix_fraud_flags_user", "user_id"),
)

track_matches = Table(
    "track_matches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("track_id", String(32), ForeignKey("tracks.id"), nullable=False),
    Column("matched_track_id", String(32), ForeignKey("tracks.id"), nullable=False),
    Column("score", Float, nullable=False),
    Column("matched", Integer, nullable=False),
    Column("query_start_s", Float, nullable=False),
    Column("query_end_s", Float, nullable=False),
    Column("ref_start_s", Float, nullable=False),
    Column("ref_end_s", Float, nullable=False),
    Column("time_scale", Float, nullable=False),
    Column("pitch_semitones", Float, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_track_matches_track", "track_id"),
    Index("ix_track_matches_matched", "matched_track_id"),
)

ledger_batches = Table(
    "ledger_batches",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("start_seq", BigInteger, nullable=False),
    Column("end_seq", BigInteger, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("engine", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("tasks", Integer, nullable=False),
    Column("tracks", Integer, nullable=False),
    Column("driver", String(200), nullable=True),
    Column("heartbeat_us", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

job_tasks = Table(
    "job_tasks",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("tracks_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),
    Column("refused", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("compute_ms", Integer, nullable=False, default=0),
    Column("cpu_ms", Integer, nullable=False, default=0),
    Column("node", String(200), nullable=True),
    Column("finished_us", BigInteger, nullable=True),
    Index("ix_job_tasks_status", "job_id", "status"),
)
