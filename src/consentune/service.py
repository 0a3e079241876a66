"""Composition root: settings -> storage adapters -> ledger, gate, consent, catalog, keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consentune.auth import ApiKeys
from consentune.catalog import Catalog
from consentune.config import Settings
from consentune.consent.decide import BatchDecision
from consentune.consent.registry import ConsentRegistry
from consentune.gate import AudioLimits, PurposeGate
from consentune.ledger import load_or_create_signer
from consentune.ledger.log import UsageLedger
from consentune.storage import SqlStore, make_engine, migrate
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
    gate = PurposeGate(
        catalog=store,
        consent=store,
        features=store,
        plays=store,
        ledger=ledger,
        blob_dir=settings.blob_dir,
        limits=AudioLimits(max_bytes=settings.max_upload_bytes, max_duration_s=settings.max_duration_s),
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
    return Consentune(settings, store, ledger, gate, consent, catalog, ApiKeys(store))


__all__ = ["Consentune", "open_service"]
