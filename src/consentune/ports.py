"""The narrow storage interface the domain packages depend on.

``consentune.storage.SqlStore`` implements every protocol here for SQLite and
PostgreSQL; domain code sees only these methods, never SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consentune.claims.model import Claim, ClaimPolicy, ClaimStatus
from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms
from consentune.fraud.detector import Alert
from consentune.ledger.sequencer import IntegrationPlan, QueuedBatch
from consentune.types import Artist, ArtistId, PlayEvent, Purpose, Role, Track, TrackId


@dataclass(frozen=True, slots=True)
class LedgerRow:
    seq: int
    data: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentSnapshot:
    """What one decision needs about a batch of tracks, read in one transaction.

    ``version`` is the consent version at that moment: anything cached
    under an older version is out of date.
    """

    version: int
    owners: Mapping[TrackId, ArtistId]
    artist_terms: Mapping[ArtistId, int]
    rules: Sequence[ConsentRule]


@dataclass(frozen=True, slots=True)
class PurgeJob:
    id: int
    artist_id: ArtistId
    track_id: TrackId | None
    purpose: Purpose
    status: str
    purged: int
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    role: Role
    artist_id: ArtistId | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ListenerSession:
    id: str
    account_id: str | None
    created_at: float  # epoch seconds (the shield's clock)
    address: str
    user_agent: str
    challenge_passed_at: float | None
    account_created_at: float | None = None  # filled on read: the shield weighs account age
    account_established_at: float | None = None  # filled on read: the account's listening history
    account_verified_at: float | None = None  # filled on read: sign-up verification passed (shield.verify)


@dataclass(frozen=True, slots=True)
class StreamMark:
    """Which stream a watermark serial (16 hex digits) was embedded in: listener, track and issue time."""

    serial: str
    session_id: str
    account_id: str | None
    track_id: str
    issued_at: float  # epoch seconds (the shield's clock)


@dataclass(frozen=True, slots=True)
class ShieldRecord:
    """One challenge or block decision, with the signals that explain it."""

    id: int
    at: float
    subject: str
    action: str
    score: float
    signals: tuple[Mapping[str, object], ...]
    lifted_at: float | None = None
    lifted_by: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMatch:
    """A stored identification result: ``track_id`` (an upload) matched ``matched_track_id``.

    Times in seconds; ``time_scale`` is reference seconds per upload second;
    ``pitch_semitones`` is the upload's shift against the reference;
    ``score`` is -log10 of the false-match bound.
    """

    track_id: TrackId
    matched_track_id: TrackId
    score: float
    matched: int
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    time_scale: float
    pitch_semitones: float
    created_at: datetime


class Transactions(Protocol):
    """Units of work: a state change and its ledger entries commit together or not at all.

    Every storage call made inside ``with transaction():`` from the same
    thread or task, the ledger append included, joins one database
    transaction; nested calls join the outer one.  Keep slow work (decoding,
    files, models) outside it: it holds the write lock.
    """

    def transaction(self) -> AbstractContextManager[None]: ...

    def in_transaction(self) -> bool:
        """Whether this thread or task is inside ``transaction()`` now."""
        ...


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A track as the public catalogue lists it: its index (0-based place), artist name and consent counter."""

    index: int
    track: Track
    artist_name: str
    consent_version: int


class LedgerRepo(Protocol):
    """The ledger's storage: a queue of acknowledged appends, the integrated log, checkpoints.

    ``enqueue`` is the request path: one INSERT, no log-wide lock, optionally
    inside the caller's own transaction (``unit``, the adapter's connection
    object).  ``integrate`` runs ``plan`` under the one-integrator-at-a-time
    lock and persists its result atomically (rows, nodes, head, batch map,
    queue removal); with ``wait=False`` it returns None when another
    integrator holds the lock.
    """

    def enqueue(self, queued_us: int, count: int, payload: bytes, *, unit: object | None = None) -> int: ...
    def integrate(
        self,
        plan: Callable[[int, bytes, list[QueuedBatch]], IntegrationPlan],
        *,
        wait: bool = True,
        max_entries: int = 20_000,
        up_to: int | None = None,
    ) -> IntegrationPlan | None: ...
    def last_queued(self) -> int: ...
    def batch_range(self, batch_id: int) -> tuple[int, int] | None: ...
    def queued_batches(self) -> int: ...
    def enqueue_once(self, key: str, queued_us: int, count: int, payload: bytes) -> tuple[int, bool]: ...
    def ledger_head(self) -> tuple[int, bytes]: ...
    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]: ...
    def node_range(self, level: int, start: int, stop: int) -> list[bytes]: ...
    def iter_ledger(
        self, *, start: int = 0, stop: int | None = None, batch: int = 10_000
    ) -> Iterator[list[LedgerRow]]: ...
    def iter_nodes(self, *, batch: int = 50_000) -> Iterator[list[tuple[int, int, bytes]]]: ...
    def ledger_rows(self, seqs: Sequence[int]) -> list[LedgerRow]: ...
    def track_ledger_seqs(
        self, track: TrackId, purpose: Purpose | None, *, limit: int, after: int = -1, before: int | None = None
    ) -> list[int]: ...
    def add_checkpoint(self, cp: StoredCheckpoint) -> None: ...
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    def checkpoint_at(self, size: int) -> StoredCheckpoint | None: ...
    def list_checkpoints(
        self, *, limit: int = 1_000_000, newest_first: bool = False, min_size: int = 0, max_size: int | None = None
    ) -> list[StoredCheckpoint]: ...
    def last_audit(self) -> StoredCheckpoint | None: ...
    def add_audit(self, cp: StoredCheckpoint) -> None: ...


class CatalogRepo(Protocol):
    def add_artist(self, artist: Artist) -> None: ...
    def get_artist(self, artist_id: ArtistId) -> Artist | None: ...
    def artist_by_name(self, name: str) -> Artist | None: ...
    def list_artists(self) -> list[Artist]: ...
    def add_track(self, track: Track, *, filename: str, actor: str) -> tuple[Track, bool]: ...
    def get_track(self, track_id: TrackId) -> Track | None: ...
    def get_tracks(self, track_ids: Sequence[TrackId]) -> dict[TrackId, Track]: ...
    def list_tracks(self, *, artist_id: ArtistId | None = None, limit: int = 100, offset: int = 0) -> list[Track]: ...
    def track_owners(self, track_ids: Sequence[TrackId]) -> dict[TrackId, ArtistId]: ...
    def count_tracks(self) -> int: ...
    def set_track_tags(self, track_id: TrackId, tags: Sequence[str]) -> None: ...
    def track_tags(self, track_ids: Sequence[TrackId]) -> dict[TrackId, list[str]]: ...
    def tracks_with_content(self, sha256: str) -> list[TrackId]: ...
    def content_groups(self) -> list[list[TrackId]]: ...


class PublicCatalogRepo(Protocol):
    """What listener-facing request paths read: each call is an index lookup or range scan."""

    def catalog_page(self, *, after: int, limit: int, artist_id: ArtistId | None = None) -> list[CatalogEntry]: ...
    def catalog_entry(self, track_id: TrackId) -> CatalogEntry | None: ...
    def search_catalog(self, words: Sequence[str], *, limit: int) -> list[CatalogEntry]: ...
    def artist_consent_version(self, artist_id: ArtistId) -> int: ...
    def consent_version(self) -> int: ...
    def purposes_ever_allowed(self, purposes: Sequence[Purpose], *, at: datetime) -> dict[Purpose, bool]: ...


class ConsentRepo(Protocol):
    def begin_consent_change(self) -> int: ...
    def consent_version(self) -> int: ...
    def consent_snapshot(self, tracks: Sequence[TrackId]) -> ConsentSnapshot: ...
    def publish_terms(self, terms: Terms) -> Terms: ...
    def all_terms(self) -> dict[int, Terms]: ...
    def set_artist_terms(self, artist_id: ArtistId, version: int) -> None: ...
    def artist_terms(self, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, int]: ...
    def add_rule(self, rule: ConsentRule, *, actor: str) -> ConsentRule: ...
    def rules_for_artists(self, artist_ids: Sequence[ArtistId]) -> list[ConsentRule]: ...
    def add_purge_job(
        self, artist_id: ArtistId, track_id: TrackId | None, purpose: Purpose, at: datetime
    ) -> PurgeJob: ...
    def finish_purge_job(self, job_id: int, *, purged: int, at: datetime) -> None: ...
    def list_purge_jobs(
        self, *, status: str | None = None, limit: int | None = None, newest_first: bool = False
    ) -> list[PurgeJob]: ...


class FeatureRepo(Protocol):
    def put_feature(self, track: TrackId, kind: str, purpose: Purpose, data: bytes, at: datetime) -> None: ...
    def put_features(self, items: Sequence[tuple[TrackId, str, Purpose, bytes]], at: datetime) -> None: ...
    def get_feature(self, track: TrackId, kind: str) -> tuple[Purpose, bytes] | None: ...
    def delete_features(self, tracks: Sequence[TrackId], purpose: Purpose) -> int: ...
    def feature_tracks(self) -> dict[Purpose, list[TrackId]]: ...
    def features_since(self, kind: str, since: datetime) -> list[TrackId]:
        """Tracks whose ``kind`` feature was written at or after ``since`` (by any process or host)."""
        ...


class MatchRepo(Protocol):
    def replace_track_matches(self, track: TrackId, matches: Sequence[StoredMatch]) -> None: ...
    def track_matches(self, track: TrackId) -> list[StoredMatch]: ...
    def delete_track_matches(self, tracks: Sequence[TrackId]) -> int: ...
    def recent_matches(self, *, limit: int) -> list[StoredMatch]: ...


class ClaimRepo(Protocol):
    """Claims on copies (consentune.claims): stored once per (copy, original) pair."""

    def add_claims(self, claims: Sequence[Claim]) -> list[Claim]: ...
    def claim(self, claim_id: int) -> Claim | None: ...
    def governing_claims(self, copies: Sequence[TrackId]) -> dict[TrackId, list[Claim]]: ...
    def move_claim(
        self,
        claim_id: int,
        *,
        expect: Sequence[ClaimStatus],
        to: ClaimStatus,
        at: datetime,
        by: str,
        reason: str | None,
    ) -> Claim | None: ...
    def list_claims(
        self,
        *,
        artist_id: ArtistId | None,
        status: ClaimStatus | None,
        limit: int,
        offset: int,
        track_id: TrackId | None = None,
    ) -> list[Claim]: ...
    def claim_policies(self, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, ClaimPolicy]: ...
    def set_claim_policy(self, artist_id: ArtistId, policy: ClaimPolicy, at: datetime) -> None: ...


# user_id, track_id, played_us, ms_played, ip, device_id, user_agent, country, account_created_us
PlayRow = tuple[str, str, int, int, str | None, str | None, str | None, str | None, int | None]
# writes one chunk of rows (the owners map tracks to artists for the rollups); returns how many
PlayWriter = Callable[[Sequence[PlayRow], Mapping[TrackId, ArtistId]], int]


class PlayRepo(Protocol):
    def add_plays(self, events: Sequence[PlayEvent]) -> int: ...
    def play_writer(self) -> AbstractContextManager[PlayWriter]: ...
    def add_impressions(self, tracks: Sequence[TrackId], *, at: datetime) -> None: ...
    def iter_plays(
        self,
        tracks: Sequence[TrackId],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch: int = 50_000,
        users: Sequence[str] | None = None,
    ) -> Iterator[list[PlayEvent]]: ...
    def play_pair_counts(
        self, tracks: Sequence[TrackId], *, min_ms: int
    ) -> tuple[list[str], list[TrackId], list[int]]: ...
    def user_plays(self, user_id: str, *, limit: int = 1000) -> list[PlayEvent]: ...


class ShieldRepo(Protocol):
    def add_listener_account(self, account_id: str, token_sha256: str, *, at: float, address: str) -> None: ...
    def listener_account(self, token_sha256: str) -> tuple[str, float] | None: ...
    def add_listener_session(self, session: ListenerSession) -> None: ...
    def listener_session(self, session_id: str) -> ListenerSession | None: ...
    def mark_challenge_passed(self, session_id: str, *, at: float) -> None: ...
    def set_account_established(self, account_id: str, *, at: float | None) -> None: ...
    def add_stream_mark(self, mark: StreamMark) -> None: ...
    def stream_marks(self, serial: str, *, limit: int = 100) -> list[StreamMark]: ...
    def record_shield_decision(self, record: ShieldRecord) -> int: ...
    def shield_decisions(
        self, *, action: str | None = None, active_only: bool = False, limit: int = 200, since: float | None = None
    ) -> list[ShieldRecord]: ...
    def lift_block(self, record_id: int, *, at: float, by: str) -> bool: ...


class FraudRepo(Protocol):
    def save_alerts(self, alerts: Sequence[Alert]) -> None: ...
    def fraud_alerts(self, *, tracks: Sequence[TrackId] | None, limit: int = 100) -> list[Alert]: ...
    def flagged_windows(self, user_ids: Sequence[str]) -> dict[str, list[tuple[float, float]]]: ...


class KeyRepo(Protocol):
    def add_key(self, record: ApiKeyRecord, secret_sha256: str) -> None: ...
    def key_by_secret(self, secret_sha256: str) -> ApiKeyRecord | None: ...
    def list_keys(self) -> list[ApiKeyRecord]: ...
    def revoke_key(self, key_id: str, at: datetime) -> bool: ...


class Store(
    Transactions,
    LedgerRepo,
    CatalogRepo,
    PublicCatalogRepo,
    ConsentRepo,
    FeatureRepo,
    PlayRepo,
    ShieldRepo,
    KeyRepo,
    FraudRepo,
    MatchRepo,
    Protocol,
):
    """The whole storage port, as the composition root wires it."""


__all__ = [
    "ApiKeyRecord",
    "CatalogEntry",
    "CatalogRepo",
    "ConsentRepo",
    "ConsentSnapshot",
    "FeatureRepo",
    "FraudRepo",
    "KeyRepo",
    "LedgerRepo",
    "LedgerRow",
    "ListenerSession",
    "MatchRepo",
    "PlayRepo",
    "PlayRow",
    "PlayWriter",
    "PublicCatalogRepo",
    "PurgeJob",
    "ShieldRecord",
    "ShieldRepo",
    "Store",
    "StoredCheckpoint",
    "StoredMatch",
    "Transactions",
]
