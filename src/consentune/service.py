"""Composition root: settings -> storage adapters -> ledger, gate, consent, catalog, keys."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from consentune.artifacts import open_model_store
from consentune.artifacts.index_feed import PublishedIndexFeed, open_postings
from consentune.auth import ApiKeys
from consentune.catalog import Catalog
from consentune.claims.service import ClaimService
from consentune.config import Settings
from consentune.consent.decide import BatchDecision
from consentune.consent.registry import ConsentRegistry
from consentune.errors import ConfigError, InvalidInput, StorageError
from consentune.fraud.live import LiveEventLog
from consentune.fraud.service import FraudService, scan_events
from consentune.gate import AudioLimits, PurposeGate
from consentune.gate.dedup import UseDedup
from consentune.identify import FingerprintIndex, IdentifyService, MmapIndex, ReplicatedIndex
from consentune.jobs import ImportCounts, JobService, PlaySinks, PlayWork
from consentune.ledger import load_or_create_signer
from consentune.ledger.log import UsageLedger
from consentune.ops import Metrics, Readiness, check_parts
from consentune.organize import OrganizeService
from consentune.organize.near import StoredMatchDuplicates
from consentune.plays import PlayLog
from consentune.recommend.service import RecommendService, serving_model
from consentune.scheduler import SqlLeases
from consentune.secretfile import create_private_file, read_private_file
from consentune.sharedstate import RedisLiveEventLog, RedisRevocationNotices, RedisUseDedup, connect, ping
from consentune.sharedstate.budget import RedisBudgetCounter
from consentune.sharedstate.cells import RedisCells
from consentune.sharedstate.ratelimit import RedisRateLimiter
from consentune.sharedstate.sqlitecells import SqliteCells
from consentune.shield.active import SharedActivePlays
from consentune.shield.budget import NewcomerBudget, parse_caps
from consentune.shield.cells import PrefetchCells, SharedCells
from consentune.shield.challenge import ChallengeIssuer
from consentune.shield.clientaddr import parse_trusted_proxies
from consentune.shield.crawlers import load_ai_crawlers
from consentune.shield.detect import ScraperDetector
from consentune.shield.guard import ShieldGuard
from consentune.shield.listen import ListenerDesk
from consentune.shield.policy import TrackPolicySource
from consentune.shield.ratelimit import CellRateLimiter, MemoryRateLimiter, RateLimiter
from consentune.shield.serial import watermark_keys
from consentune.shield.shareddetect import SharedScraperDetector
from consentune.shield.streammark import StreamMarker
from consentune.shield.streams import StreamSigner
from consentune.shield.verify import EmailLinkVerifier, SignupVerification, SignupWork, WorkParams
from consentune.storage import SqlJobStore, SqlStore, make_engine, migrate
from consentune.storage.budget_sql import SqlBudgetCounter
from consentune.storage.claims_sql import SqlClaims
from consentune.storage.index_feed_sql import SqlIndexFeedRows
from consentune.storage.tiles import FileTileStore
from consentune.types import PlayEvent, Purpose, Track, TrackId

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Consentune:
    """One wired instance of the platform core; the CLI and the API both use it."""

    settings: Settings
    store: SqlStore
    ledger: UsageLedger
    gate: PurposeGate
    consent: ConsentRegistry
    catalog: Catalog
    keys: ApiKeys
    listen: ListenerDesk
    plays: PlayLog
    recommend: RecommendService
    identify: IdentifyService
    organize: OrganizeService
    fraud: FraudService
    session_key: bytes  # signs dashboard session cookies and CSRF tokens
    claims: ClaimService
    jobs: JobService
    metrics: Metrics = field(default_factory=Metrics)
    leases: SqlLeases | None = None
    redis: redis.Redis | None = None  # shared state across workers, when CONSENTUNE_REDIS_URL is set
    notices: RedisRevocationNotices | None = None
    verification: SignupVerification | None = None  # identity cost (shield.verify)
    newcomer_budget: NewcomerBudget | None = None  # shared audio caps for unestablished listeners (shield.budget)

    def readiness(self) -> Readiness:
        """Database, Redis (if configured) and blob store, each probed once (``GET /v1/ready``)."""
        engine = self.store.engine
        probes: dict[str, Any] = {"database": lambda: _ping_database(engine)}
        if self.redis is not None:
            client = self.redis
            probes["redis"] = lambda: ping(client)
        probes["blob_store"] = self.gate.check_blob_store
        return check_parts(probes)

    def close(self) -> None:
        if self.notices is not None:
            self.notices.close()
        if self.redis is not None:
            self.redis.close()
        self.store.engine.dispose()


def open_service(settings: Settings | None = None) -> Consentune:
    """Open (and on first run create) the data folder, database, signing key and default terms."""
    settings = settings or Settings.from_env()
    _check_shared_secrets(settings)
    _make_home(settings.home)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = SqlStore(engine)
    claim_store = SqlClaims(store)
    metrics = Metrics()
    shared = connect(settings.redis_url) if settings.redis_url else None
    use_dedup: UseDedup | None = None
    live_log: LiveEventLog | None = None
    if shared is not None:
        use_dedup = RedisUseDedup(shared, prefix=settings.redis_prefix)
        live_log = RedisLiveEventLog(shared, prefix=settings.redis_prefix)
    signer = load_or_create_signer(settings.key_path, settings.log_origin)
    ledger = UsageLedger(
        store,
        signer,
        origin=settings.log_origin,
        tiles=FileTileStore(settings.tiles_dir),
        integrate_batch=settings.ledger_integrate_batch,
        observer=metrics,
    )
    secret = load_or_create_secret(settings.shield_secret_path)
    gate = PurposeGate(
        catalog=store,
        consent=store,
        features=store,
        plays=store,
        ledger=ledger,
        transactions=store,
        blobs=settings.blob_location,
        s3_endpoint_url=settings.s3_endpoint_url,
        limits=AudioLimits(max_bytes=settings.max_upload_bytes, max_duration_s=settings.max_duration_s),
        use_dedup=use_dedup,
        observer=metrics,
        claims=claim_store,
        grant_seed=hmac_key(secret, "work-grant"),
        group_commit=settings.gate_group_commit,
    )

    def decide(purpose: Purpose, tracks: Sequence[TrackId]) -> BatchDecision:
        return gate.decide(purpose=purpose, tracks=tracks)

    def purge_features(purpose: Purpose, tracks: Sequence[TrackId], actor: str) -> int:
        return gate.purge(actor=actor, purpose=purpose, tracks=tracks)

    consent = ConsentRegistry(repo=store, catalog=store, ledger=ledger, decider=decide, transactions=store)
    consent.add_purger(purge_features)
    consent.ensure_default_terms()
    catalog = Catalog(
        repo=store,
        consent=store,
        gate=gate,
        ledger=ledger,
        transactions=store,
        max_upload_bytes=settings.max_upload_bytes,
    )
    listen = _listener_desk(settings, secret, store, catalog, gate, consent, shared)
    plays = PlayLog(plays=store, catalog=store)
    fraud = FraudService(gate=gate, repo=store, catalog=store, live_log=live_log, observer=metrics)
    recommend = RecommendService(
        gate=gate,
        catalog=catalog,
        ledger=ledger,
        models=open_model_store(
            settings.models_location,
            shared=settings.models_url is not None,
            key=hmac_key(secret, "model-seal"),
            s3_endpoint_url=settings.s3_endpoint_url,
        ),
        model_factory=serving_model,
        play_filter=fraud.without_flagged,
        on_impressions=lambda tracks, at: store.add_impressions(tracks, at=at),
    )
    consent.add_purger(recommend.on_revoked)
    local_fingerprints = MmapIndex(settings.fingerprint_dir)
    fingerprints = _fingerprint_index(settings, engine, local_fingerprints, key=hmac_key(secret, "index-seal"))
    identify = IdentifyService(gate=gate, catalog=store, ledger=ledger, matches=store, index=fingerprints)
    consent.add_purger(identify.on_revoked)
    claims = ClaimService(
        repo=claim_store,
        ledger=ledger,
        owners=store.track_owners,
        duration_s=_duration_of(store),
        repurge=lambda tracks, actor: consent.purge_denied(tracks, actor=actor),
        transactions=store,
    )
    if settings.identify_at_ingest:
        identify.keep_upload_decodes()

        def check_upload(track: Track, _actor: str) -> None:
            found = identify.check_upload(track.id, actor="service:identify")
            claims.open_from_matches(track.id, found, actor="service:identify")

        catalog.add_ingest_hook(check_upload)
    near = StoredMatchDuplicates(matches_for=identify.matches_for, duration_s=_duration_of(store))
    organize = OrganizeService(gate=gate, catalog=store, features=store, near_finder=near)
    consent.add_purger(organize.on_revoked)
    notices = None
    if shared is not None:
        notices = _revocation_notices(
            shared, settings.redis_prefix, metrics, [recommend.on_revoked, organize.on_revoked]
        )
        consent.add_purger(_publisher(notices))
    svc = Consentune(
        settings,
        store,
        ledger,
        gate,
        consent,
        catalog,
        ApiKeys(store),
        listen,
        plays,
        recommend,
        identify=identify,
        organize=organize,
        fraud=fraud,
        session_key=hmac_key(secret, "dashboard-session"),
        claims=claims,
        jobs=JobService(
            gate=gate,
            repo=SqlJobStore(engine),
            index=fingerprints,
            features=store,
            blob_dir=settings.blob_location,
            plays=PlayWork(gate=gate, sinks=_play_sinks(settings, store, plays, fraud, recommend)),
        ),
        metrics=metrics,
        leases=SqlLeases(engine),
        redis=shared,
        notices=notices,
        verification=signup_verification(settings, secret, store),
        newcomer_budget=newcomer_budget(settings, store, shared),
    )
    if local_fingerprints.recovery.repaired:
        reconcile_fingerprints(svc, actor="system:index-recovery", reindex=True, queue_rest=True)
    return svc


def _fingerprint_index(settings: Settings, engine: Engine, local: MmapIndex, *, key: bytes) -> FingerprintIndex:
    """This machine's index folder, or, when machines share their artifacts (``CONSENTUNE_MODELS_URL``),
    this machine's copy of the index every machine shares (a feed in the database, postings beside the models)."""
    if settings.models_url is None:
        return local
    objects = open_postings(settings.models_url, s3_endpoint_url=settings.s3_endpoint_url)
    return ReplicatedIndex(local, PublishedIndexFeed(SqlIndexFeedRows(engine), objects, key=key))


def reconcile_fingerprints(
    svc: Consentune, *, actor: str, reindex: bool, queue_rest: bool = False, recent_only: bool = False
) -> None:
    """Index and catalogue agree again: orphans and revoked tracks removed, missing tracks re-indexed
    (a bounded number inline through the gate; with ``queue_rest`` the rest become a fingerprint job,
    otherwise the next sweep takes the next ones).  ``recent_only`` (the periodic sweep) re-indexes only
    tracks from the last day, where an upload killed before indexing is; older gaps are for `index build`."""
    since = datetime.now(UTC) - timedelta(days=1) if recent_only else None
    report = svc.identify.reconcile(actor=actor, reindex=reindex, created_after=since)
    if report.orphans or report.revoked or report.reindexed.indexed:
        logger.warning(
            "fingerprint index reconciled: %d orphans and %d revoked tracks removed, %d tracks re-indexed",
            len(report.orphans), len(report.revoked), len(report.reindexed.indexed),
        )  # fmt: skip
    if report.missing and queue_rest:
        job = svc.jobs.create("fingerprint", report.missing, actor=actor)
        logger.warning(
            "%d catalogue tracks are missing from the fingerprint index: run `consentune jobs resume %d`",
            len(report.missing), job.id,
        )  # fmt: skip


Dropper = Callable[[Purpose, Sequence[TrackId], str], int]


def _revocation_notices(
    client: redis.Redis, prefix: str, metrics: Metrics, droppers: list[Dropper]
) -> RedisRevocationNotices:
    """Other workers' revocations drop the same tracks from this worker's in-memory snapshots."""

    def apply(purpose: str, tracks: Sequence[str]) -> None:
        for drop in droppers:
            drop(Purpose(purpose), [TrackId(t) for t in tracks], "system:revocation-notice")

    return RedisRevocationNotices(client, prefix=prefix, apply=apply, observer=metrics)


def _publisher(notices: RedisRevocationNotices) -> Dropper:
    def publish(purpose: Purpose, tracks: Sequence[TrackId], _actor: str) -> int:
        notices.publish(purpose, tracks)
        return 0

    return publish


def _play_sinks(
    settings: Settings, store: SqlStore, plays: PlayLog, fraud: FraudService, recommend: RecommendService
) -> PlaySinks:
    """How plays jobs reach the recommender, fraud detection and the play log (their public functions only)."""

    def rescan(events: Sequence[PlayEvent], key: str) -> int:
        alerts, _stats = scan_events(events)
        store.save_alerts([dataclasses.replace(a, id=f"fa_{key}_{i}") for i, a in enumerate(alerts)])
        return len(alerts)

    def import_file(path: Path) -> ImportCounts:  # looked up at each call, so a test can wrap the service
        report = plays.import_file(path)
        return ImportCounts(report.imported, report.rejected)

    def count_plays(user: str, track: TrackId, at: datetime) -> int:
        pages = store.iter_plays([track], since=at, until=at + timedelta(microseconds=1))
        return sum(1 for page in pages for p in page if p.user_id == user)

    return PlaySinks(
        publish_model=lambda *args, **kwargs: recommend.publish(*args, **kwargs),
        play_filter=lambda page: fraud.without_flagged(page),
        rescan=rescan,
        import_file=import_file,
        known_tracks=lambda tracks: list(store.track_owners(tracks)),
        count_plays=count_plays,
        work_dir=settings.home / "jobs",
        flagged_users=lambda users: set(store.flagged_windows(users)),
    )


def _ping_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_shared_secrets(settings: Settings) -> None:
    """Production mode never generates a key or secret: every machine must mount the same ones."""
    if not settings.production:
        return
    if settings.secrets_dir is None:
        raise ConfigError(
            "CONSENTUNE_ENV=production but CONSENTUNE_SECRETS_DIR is not set",
            hint="create the secrets once with `consentune secrets init DIR`, mount DIR on every machine "
            "and set CONSENTUNE_SECRETS_DIR=DIR",
        )
    missing = [p for p in (settings.key_path, settings.shield_secret_path) if not p.is_file()]
    if missing:
        raise ConfigError(
            f"CONSENTUNE_ENV=production and {', '.join(str(p) for p in missing)} is missing",
            hint="production never generates secrets per machine: run `consentune secrets init "
            f"{settings.secrets_dir}` once and mount that folder on every machine",
        )


def _make_home(home: Path) -> None:
    try:
        home.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInput(
            f"the data folder {home} is a file (or lies inside one)",
            hint="point CONSENTUNE_HOME at a folder; it is created when missing",
        ) from None
    except OSError as exc:
        raise StorageError(
            f"cannot create the data folder {home}: {exc.strerror}",
            hint="point CONSENTUNE_HOME at a folder you may write to",
        ) from None


def _listener_desk(
    settings: Settings,
    secret: bytes,
    store: SqlStore,
    catalog: Catalog,
    gate: PurposeGate,
    consent: ConsentRegistry,
    shared: redis.Redis | None,
) -> ListenerDesk:
    """The shield in front of listener traffic: limiter, detector, active streams (in memory or shared)."""
    crawler_tokens = [c.token for c in load_ai_crawlers()]
    cells = _shield_cells(settings, shared)
    limiter: RateLimiter = MemoryRateLimiter()
    detector = ScraperDetector(crawler_tokens=crawler_tokens)
    if cells is not None:
        detector = SharedScraperDetector(cells, crawler_tokens=crawler_tokens)
        limiter = CellRateLimiter(cells)
    if settings.redis_url:
        limiter = RedisRateLimiter(settings.redis_url, prefix=f"{settings.redis_prefix}rl:")
    guard = ShieldGuard(
        repo=store,
        limiter=limiter,
        detector=detector,
        challenges=ChallengeIssuer(hmac_key(secret, "challenge")),
        shared=cells,
    )
    policy = TrackPolicySource(gate=gate, versions=store, ttl_s=settings.signal_ttl_s)
    return ListenerDesk(
        store=store,
        catalog=catalog,
        gate=gate,
        guard=guard,
        signer=StreamSigner(hmac_key(secret, "stream")),
        trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        pseudonym_key=hmac_key(secret, "listener-pseudonym"),
        policy=policy,
        listing=store,
        catalog_ttl_s=settings.signal_ttl_s,
        anonymous_audio=settings.anonymous_audio,
        preview_s=settings.preview_s,
        marker=StreamMarker(keys=watermark_keys(secret)) if settings.stream_watermark else None,
        active=None if cells is None else SharedActivePlays(cells),
    )


SHIELD_STATE_FILE = "shield-state.sqlite3"  # in the home folder: the `file` shield state


def _shield_cells(settings: Settings, shared: redis.Redis | None) -> SharedCells | None:
    """Where the shield's state lives (``CONSENTUNE_SHIELD_STATE``); None: in this process only."""
    mode = settings.shield_state
    if mode == "auto":
        mode = "redis" if shared is not None else "memory"
    if mode == "redis" and shared is not None:
        return PrefetchCells(RedisCells(shared, prefix=settings.redis_prefix))
    if mode == "file":  # with a Redis URL the rate limiter is Redis's, not the file's buckets
        return PrefetchCells(SqliteCells(settings.home / SHIELD_STATE_FILE), takes=not settings.redis_url)
    return None


# -- identity cost and newcomer budgets -------------------------------------------
def signup_verification(settings: Settings, secret: bytes, store: SqlStore) -> SignupVerification:
    """The methods the platform accepts, each with its part: puzzle, mail sender, identity check."""
    methods = settings.signup_verify
    work = SignupWork(hmac_key(secret, "signup-work"), _work_params(settings)) if "pow" in methods else None
    email = None
    if "email" in methods:
        outbox = _plugin(settings.signup_outbox, "CONSENTUNE_SIGNUP_OUTBOX", "a mail sender (Outbox)")
        email = EmailLinkVerifier(secret=hmac_key(secret, "signup-email"), outbox=outbox,
                                  link_base=settings.signup_link_base)  # fmt: skip
    hook = _plugin(settings.signup_hook, "CONSENTUNE_SIGNUP_HOOK", "an IdentityCheck") if "hook" in methods else None
    return SignupVerification(methods=methods, accounts=store, work=work, email=email, hook=hook,
                              hook_key=hmac_key(secret, "signup-hook"))  # fmt: skip


def _work_params(settings: Settings) -> WorkParams:
    return WorkParams(bits=settings.signup_pow_bits) if settings.signup_pow_bits is not None else WorkParams()


def _plugin(spec: str | None, name: str, what: str) -> Any:
    """``module:factory`` -> ``factory()``; the platform's own code, loaded once at start."""
    if not spec or ":" not in spec:
        raise ConfigError(f"{name} is not set", hint=f"set {name}=package.module:factory returning {what}")
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{name}={spec!r} cannot be loaded: {exc}", hint="check the module path and name") from None


def newcomer_budget(settings: Settings, store: SqlStore, shared: redis.Redis | None) -> NewcomerBudget | None:
    """Counters shared by every worker: Redis when configured, the database otherwise."""
    caps = parse_caps(settings.newcomer_budget)
    if caps is None:
        return None
    counter = RedisBudgetCounter(shared, prefix=settings.redis_prefix) if shared is not None else None
    return NewcomerBudget(counter or SqlBudgetCounter(store.engine), caps)


# -- end identity cost --


def _duration_of(store: SqlStore) -> Callable[[TrackId], float | None]:
    def duration(track: TrackId) -> float | None:
        found = store.get_track(track)
        return None if found is None else found.duration_s

    return duration


def hmac_key(secret: bytes, purpose: str) -> bytes:
    """Separate keys per use, derived from one stored secret."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """32 random bytes kept in the data folder (0600) so every worker signs alike.

    Created atomically (a crash leaves no file or a whole one); a file that
    is empty or not exactly 32 bytes is refused rather than signing with it.
    """
    if not path.exists():
        create_private_file(path, secrets.token_bytes(SECRET_BYTES))  # False: another worker's won; read it
    secret = read_private_file(path, what="shield secret")
    if len(secret) != SECRET_BYTES:
        raise InvalidInput(
            f"shield secret {path} holds {len(secret)} bytes, not {SECRET_BYTES}",
            hint=f"restore it from backup, or delete {path} to create a new one "
            "(listeners are signed out and open stream links stop working)",
        )
    return secret


__all__ = ["Consentune", "load_or_create_secret", "open_service"]
