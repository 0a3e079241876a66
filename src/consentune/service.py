"""Composition root: settings -> storage adapters -> ledger, gate, consent, catalog, keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consentune.auth import ApiKeys
from consentune.catalog import Catalog
from consentune.config import Settings
from consentune.consent.decide import BatchDecision
from consentune.consent.registry import ConsentRegistry
from consentune.fraud.service import FraudService
from consentune.gate import AudioLimits, PurposeGate
from consentune.identify import IdentifyService, MmapIndex
from consentune.jobs import JobService
from consentune.ledger import load_or_create_signer
from consentune.ledger.log import UsageLedger
from consentune.organize import OrganizeService
from consentune.organize.near import StoredMatchDuplicates
from consentune.plays import PlayLog
from consentune.recommend.service import RecommendService, serving_model
from consentune.shield.challenge import ChallengeIssuer
from consentune.shield.clientaddr import parse_trusted_proxies
from consentune.shield.crawlers import load_ai_crawlers
from consentune.shield.detect import ScraperDetector
from consentune.shield.guard import ShieldGuard
from consentune.shield.listen import ListenerDesk
from consentune.shield.policy import TrackPolicySource
from consentune.shield.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from consentune.shield.streams import StreamSigner
from consentune.storage import SqlJobStore, SqlStore, make_engine, migrate
from consentune.types import Purpose, TrackId


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
    jobs: JobService

    def close(self) -> None:
        self.store.engine.dispose()


def open_service(settings: Settings | None = None) -> Consentune:
    """Open (and on first run create) the data folder, database, signing key and default terms."""
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = SqlStore(engine)
    signer = load_or_create_signer(settings.key_path, settings.log_origin)
    ledger = UsageLedger(store, signer, origin=settings.log_origin)
    secret = _load_or_create_secret(settings.shield_secret_path)
    gate = PurposeGate(
        catalog=store,
        consent=store,
        features=store,
        plays=store,
        ledger=ledger,
        blob_dir=settings.blob_dir,
        limits=AudioLimits(max_bytes=settings.max_upload_bytes, max_duration_s=settings.max_duration_s),
        grant_seed=hmac_key(secret, "work-grant"),
    )

    def decide(purpose: Purpose, tracks: Sequence[TrackId]) -> BatchDecision:
        return gate.decide(purpose=purpose, tracks=tracks)

    def purge_features(purpose: Purpose, tracks: Sequence[TrackId], actor: str) -> int:
        return gate.purge(actor=actor, purpose=purpose, tracks=tracks)

    consent = ConsentRegistry(repo=store, catalog=store, ledger=ledger, decider=decide)
    consent.add_purger(purge_features)
    consent.ensure_default_terms()
    catalog = Catalog(
        repo=store,
        consent=store,
        gate=gate,
        ledger=ledger,
        max_upload_bytes=settings.max_upload_bytes,
    )
    listen = _listener_desk(settings, secret, store, catalog, gate, consent)
    plays = PlayLog(plays=store, catalog=store)
    fraud = FraudService(gate=gate, repo=store, catalog=store)
    recommend = RecommendService(
        gate=gate,
        catalog=catalog,
        ledger=ledger,
        models_dir=settings.home / "models",
        model_factory=serving_model,
        play_filter=fraud.without_flagged,
    )
    consent.add_purger(recommend.on_revoked)
    fingerprints = MmapIndex(settings.fingerprint_dir)
    identify = IdentifyService(gate=gate, catalog=store, ledger=ledger, matches=store, index=fingerprints)
    consent.add_purger(identify.on_revoked)
    if settings.identify_at_ingest:
        catalog.add_ingest_hook(lambda track, _actor: identify.check_upload(track.id, actor="service:identify"))
    near = StoredMatchDuplicates(matches_for=identify.matches_for, duration_s=_duration_of(store))
    organize = OrganizeService(gate=gate, catalog=store, features=store, near_finder=near)
    consent.add_purger(organize.on_revoked)
    return Consentune(
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
        jobs=JobService(
            gate=gate, repo=SqlJobStore(engine), index=fingerprints, features=store, blob_dir=settings.blob_dir
        ),
    )


def _listener_desk(
    settings: Settings, secret: bytes, store: SqlStore, catalog: Catalog, gate: PurposeGate, consent: ConsentRegistry
) -> ListenerDesk:
    """The shield in front of listener traffic: limiter (memory or Redis), detector, challenges, signer."""
    limiter: RateLimiter = RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
    crawler_tokens = [c.token for c in load_ai_crawlers()]
    guard = ShieldGuard(
        repo=store,
        limiter=limiter,
        detector=ScraperDetector(crawler_tokens=crawler_tokens),
        challenges=ChallengeIssuer(hmac_key(secret, "challenge")),
    )
    policy = TrackPolicySource(gate=gate, catalog=catalog, ttl_s=settings.signal_ttl_s)
    return ListenerDesk(
        store=store,
        catalog=catalog,
        gate=gate,
        guard=guard,
        signer=StreamSigner(hmac_key(secret, "stream")),
        trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        pseudonym_key=hmac_key(secret, "listener-pseudonym"),
        policy=policy,
        catalog_ttl_s=settings.signal_ttl_s,
        anonymous_audio=settings.anonymous_audio,
        preview_s=settings.preview_s,
    )


def _duration_of(store: SqlStore) -> Callable[[TrackId], float | None]:
    def duration(track: TrackId) -> float | None:
        found = store.get_track(track)
        return None if found is None else found.duration_s

    return duration


def hmac_key(secret: bytes, purpose: str) -> bytes:
    """Separate keys per use, derived from one stored secret."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def _load_or_create_secret(path: Path) -> bytes:
    """32 random bytes kept in the data folder (0600) so every worker signs alike."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path.read_bytes()


__all__ = ["Consentune", "open_service"]
