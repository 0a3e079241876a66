"""SQLAlchemy Core tables.  Times are integer microseconds since the Unix epoch (UTC)."""

from __future__ import annotations

from typing import Any

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


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: the full-text index is kept by the database itself (migration ``0007_reqpaths``):
    SQLite's FTS5 table ``tracks_fts`` and its shadow tables, PostgreSQL's ``tracks.search`` and its index."""
    if type_ == "table" and (name or "").startswith("tracks_fts"):
        return False
    if type_ == "column" and name == "search" and getattr(getattr(obj, "table", None), "name", "") == "tracks":
        return False
    return not (type_ == "index" and name == "ix_tracks_search")


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
    Column("consent_version", BigInteger, nullable=False, server_default="0"),
    Index("ix_artists_terms", "terms_version"),
)

# One row (id 1): bumped with every consent change, so renders of the whole policy know when to redo.
consent_state = Table(
    "consent_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
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
    # place in the public catalogue; PostgreSQL fills it from a sequence, SQLite from max + 1
    Column("pos", BigInteger, nullable=True),
    UniqueConstraint("artist_id", "content_sha256", name="uq_tracks_artist_content"),
    Index("ix_tracks_content", "content_sha256"),
    Index("ix_tracks_pos", "pos", unique=True),
    Index("ix_tracks_artist_pos", "artist_id", "pos"),
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
    Column("allow", Boolean, nullable=True),  # NULL: the track follows the artist's all-tracks choice
    Column("valid_from_us", BigInteger, nullable=True),
    Column("valid_until_us", BigInteger, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_consent_rules_artist", "artist_id", "purpose"),
    Index("ix_consent_rules_purpose", "purpose", "allow"),
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
    Index("ix_features_kind_created", "kind", "created_us"),  # what each worker's similarity index reloads
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

ledger_queue = Table(
    "ledger_queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("queued_us", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    sqlite_autoincrement=True,  # ids are tickets: SQLite must never reuse one after the queue empties
)

ledger_batches = Table(
    "ledger_batches",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
)

ledger_audits = Table(
    "ledger_audits",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("audited_us", BigInteger, nullable=False),
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
    Index("ux_plays_event", "user_id", "played_us", "track_id", unique=True),  # a re-run import adds nothing
)

listener_accounts = Table(
    "listener_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("created_address", String(45), nullable=False),
    Column("established_us", BigInteger, nullable=True),  # listening history: when it became established
    Column("verified_us", BigInteger, nullable=True),  # sign-up verification passed (shield.verify)
    Column("verified_kind", String(16), nullable=True),  # pow, email, hook
    Column("verified_subject", String(64), nullable=True, unique=True),  # keyed digest: one account per inbox/phone
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

stream_marks = Table(  # watermark serial -> the stream it was embedded in (several streams may share one)
    "stream_marks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("serial", String(16), nullable=False),
    Column("session_id", String(48), nullable=False),
    Column("account_id", String(32), nullable=True),
    Column("track_id", String(32), nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Index("ix_stream_marks_serial", "serial"),
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

claims = Table(
    "claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("copy_track_id", String(32), ForeignKey("tracks.id"), nullable=False),
    Column("original_track_id", String(32), ForeignKey("tracks.id"), nullable=False),
    Column("copy_artist_id", String(32), ForeignKey("artists.id"), nullable=False),
    Column("original_artist_id", String(32), ForeignKey("artists.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("copy_start_s", Float, nullable=False),
    Column("copy_end_s", Float, nullable=False),
    Column("original_start_s", Float, nullable=False),
    Column("original_end_s", Float, nullable=False),
    Column("time_scale", Float, nullable=False),
    Column("pitch_semitones", Float, nullable=False),
    Column("partial", Boolean, nullable=False),
    Column("dispute_reason", String(500), nullable=True),
    Column("resolved_by", String(100), nullable=True),
    Column("opened_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    UniqueConstraint("copy_track_id", "original_track_id", name="uq_claims_pair"),
    Index("ix_claims_copy", "copy_track_id"),
    Index("ix_claims_original_artist", "original_artist_id", "status"),
    Index("ix_claims_copy_artist", "copy_artist_id", "status"),
)

claim_policies = Table(
    "claim_policies",
    metadata,
    Column("artist_id", String(32), ForeignKey("artists.id"), primary_key=True),
    Column("policy", String(16), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# one row per lease (the scheduler's leader) or periodic job (when it is next due), shared by all workers
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("until_us", BigInteger, nullable=False),
)

# Rollups the reach page reads, maintained as plays arrive (days are days since 1970-01-01 UTC).
track_daily = Table(
    "track_daily",
    metadata,
    Column("track_id", String(32), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("plays", BigInteger, nullable=False),
    Column("impressions", BigInteger, nullable=False),
)

artist_daily = Table(
    "artist_daily",
    metadata,
    Column("artist_id", String(32), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("plays", BigInteger, nullable=False),
    Column("listeners", BigInteger, nullable=False),
    Column("impressions", BigInteger, nullable=False),
)

artist_day_listeners = Table(
    "artist_day_listeners",
    metadata,
    Column("artist_id", String(32), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("user_id", String(64), primary_key=True),
)

# What the ledger says about each artist's music, kept as entries are integrated (the artist overview's
# "what happened to my music"): entries per day, purpose and decision, and every refusal about a track.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("artist_id", String(32), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("purpose", String(64), primary_key=True),
    Column("decision", String(16), primary_key=True),
    Column("entries", BigInteger, nullable=False),
)

usage_refusals = Table(
    "usage_refusals",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("artist_id", String(32), nullable=False),
    Column("time", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("track_id", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_usage_refusals_artist", "artist_id", "seq"),
)

# batch keys of idempotent appends (a retried job task logs nothing twice): key -> queued batch
ledger_once = Table(
    "ledger_once",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("batch_id", BigInteger, nullable=False),
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

# newcomer budgets (shield.budget): distinct audio per (scope, clock hour, track), totals, vouchers
shield_budget_seen = Table(
    "shield_budget_seen",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("track", String(32), primary_key=True),
    Column("upto_ms", BigInteger, nullable=False),
)

shield_budget_totals = Table(
    "shield_budget_totals",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("total_ms", BigInteger, nullable=False),
    Index("ix_shield_budget_totals_hour", "hour"),
)

shield_vouchers = Table(
    "shield_vouchers",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("member", String(48), primary_key=True),
    Column("seen_us", BigInteger, nullable=False),
)

# the shared fingerprint index's feed (identify.replica): one row per change, in commit order; the
# postings of an add live in the artifact store under the track's name, not here
index_feed = Table(
    "index_feed",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("track_id", String(32), nullable=False),
    Column("removed", Boolean, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # positions are marks held by every copy: never reused
)
