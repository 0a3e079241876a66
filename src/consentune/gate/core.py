"""PurposeGate: the single door to audio, decoded samples and derived features.

Callers name actor, purpose, action and tracks.  The gate decides per
track from the consent registry, writes every decision (allow and deny) to
the ledger in one batch, and returns handles only for allowed tracks.
Content is then read by presenting a handle back to the gate.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from consentune.claims import EXEMPT as CLAIM_EXEMPT
from consentune.claims import apply_claims
from consentune.claims.model import Claim
from consentune.consent.decide import BatchDecision, ConsentContext, decide_isolated, next_change
from consentune.consent.terms import Terms
from consentune.errors import AccessDenied, InvalidInput, NotFound
from consentune.gate import decode as _decode
from consentune.gate.blobs import open_blob_store
from consentune.gate.combine import GroupCommit
from consentune.gate.dedup import MemoryUseDedup, UseDedup, use_key
from consentune.gate.fresh import FreshDecodes
from consentune.gate.grants import GrantItem, GrantSigner, GrantVerifier, WorkGrant
from consentune.gate.handles import ACTIONS, HandleMinter, TrackHandle
from consentune.ledger.log import LedgerTicket, UsageLedger, UsageRecord
from consentune.observe import NULL_OBSERVER, Observer
from consentune.ports import (
    CatalogRepo,
    ClaimRepo,
    ConsentRepo,
    ConsentSnapshot,
    FeatureRepo,
    PlayRepo,
    Transactions,
)
from consentune.types import PlayEvent, Purpose, Track, TrackId, is_wellformed_purpose

_log = logging.getLogger(__name__)

MAX_BATCH = 1_000_000
MAX_TRACK_ID = 32
GROUPED_MAX_TRACKS = 32  # requests about more tracks than this (batch work) commit on their own


@dataclass(frozen=True, slots=True)
class _Ask:
    actor: str
    purpose: Purpose
    tracks: tuple[TrackId, ...]
    action: str


@dataclass(frozen=True, slots=True)
class _Decided:
    """One track's answer inside a request: what the ledger records and the caller is told."""

    track: TrackId
    allowed: bool
    reason: str
    terms_version: int | None


@dataclass(frozen=True, slots=True)
class Denial:
    track: TrackId
    reason: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Outcome of one gate request: handles for allowed tracks, reasons for the rest."""

    purpose: Purpose
    action: str
    allowed: tuple[TrackHandle, ...]
    denied: tuple[Denial, ...]
    ledger_ticket: LedgerTicket  # resolve with UsageLedger.sequences() when the indices are needed


@dataclass(frozen=True, slots=True)
class WorkBatch:
    """One batch of a job as the gate granted it.

    ``grant`` names the allowed tracks only; ``fresh`` is False when this
    batch key was granted before (a resumed task): the decisions are the
    ones logged then, and nothing new was logged.
    """

    grant: WorkGrant
    denied: tuple[Denial, ...]
    ledger_ticket: LedgerTicket  # the logged decisions: resolve with UsageLedger.sequences() when needed
    fresh: bool


@dataclass(frozen=True, slots=True)
class AdmittedUpload:
    """An upload the gate accepted and stored; ``info`` comes from a full decode."""

    sha256: str
    info: _decode.AudioInfo
    size_bytes: int
    new_blob: bool = False  # this upload wrote the blob (no earlier upload had the same bytes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PurposeGate:
    def __init__(
        self,
        *,
        catalog: CatalogRepo,
        consent: ConsentRepo,
        features: FeatureRepo,
        plays: PlayRepo,
        ledger: UsageLedger,
        transactions: Transactions,
        blobs: str | Path,
        limits: _decode.AudioLimits,
        s3_endpoint_url: str | None = None,
        handle_ttl_s: float = 900.0,
        use_log_window_s: float = 3600.0,
        use_dedup: UseDedup | None = None,
        observer: Observer = NULL_OBSERVER,
        clock: Callable[[], datetime] = _utcnow,
        claims: ClaimRepo | None = None,
        grant_seed: bytes | None = None,
        grant_ttl_s: float = 3600.0,
        group_commit: int = 256,
    ) -> None:
        """``blobs`` is a folder or ``s3://bucket/prefix`` (see :func:`~consentune.gate.blobs.open_blob_store`);
        ``use_dedup`` decides which repeated uses are logged (in-process unless given); up to
        ``group_commit`` small requests made at the same time share one transaction (1: none do)."""
        self._catalog = catalog
        self._consent = consent
        self._features = features
        self._plays = plays
        self._ledger = ledger
        self._tx = transactions
        self._blobs = open_blob_store(blobs, s3_endpoint_url=s3_endpoint_url)
        self._limits = limits
        self._minter = HandleMinter(ttl_s=handle_ttl_s)
        self._use_log_window_s = use_log_window_s
        self._use_dedup: UseDedup = use_dedup if use_dedup is not None else MemoryUseDedup()
        self._observer = observer
        self._clock = clock
        self._claims = claims
        self._terms_lock = threading.Lock()
        self._terms_cache: tuple[int, Mapping[int, Terms]] = (-1, {})
        self._signer = GrantSigner(grant_seed or secrets.token_bytes(32), ttl_s=grant_ttl_s)
        self._verifier = GrantVerifier(self._signer.verify_key)
        self._grouped: GroupCommit[_Ask, Grant] | None = (
            GroupCommit(self._request_group, max_batch=group_commit) if group_commit > 1 else None
        )
        self._upload_shape: tuple[bool, int | None] | None = None
        self._fresh = FreshDecodes()

    @property
    def grant_verify_key(self) -> bytes:
        """Public key workers check :class:`WorkGrant` signatures with (they can verify, never sign)."""
        return self._signer.verify_key

    # -- decisions --------------------------------------------------------
    def decide(self, *, purpose: Purpose, tracks: Sequence[TrackId]) -> BatchDecision:
        """Decide without logging or granting: for read-only consent views, never for content.

        A copy under a governing claim is also held to its original's answer
        and the original artist's claim policy (consentune.claims.effect).
        """
        return self._decide_at(self._consent.consent_snapshot(tracks), purpose=purpose, tracks=tracks, claims=None)

    def _decide_at(
        self,
        snapshot: ConsentSnapshot,
        *,
        purpose: Purpose,
        tracks: Sequence[TrackId],
        claims: Mapping[TrackId, Sequence[Claim]] | None,
    ) -> BatchDecision:
        """``decide`` against one consent snapshot; ``claims`` are the tracks' governing claims if already read."""
        batch = self._decide_own(snapshot, purpose=purpose, tracks=tracks)
        if self._claims is None or purpose in CLAIM_EXEMPT or not bool(batch.allowed.any()):
            return batch
        if claims is None:
            claims = self._claims.governing_claims(
                [t for t, ok in zip(tracks, batch.allowed.tolist(), strict=True) if ok]
            )
        if not claims:
            return batch
        originals = sorted({c.original_track_id for found in claims.values() for c in found})
        theirs = self._decide_own(self._consent.consent_snapshot(originals), purpose=purpose, tracks=originals)
        policies = self._claims.claim_policies(sorted({c.original_artist_id for f in claims.values() for c in f}))
        return apply_claims(
            batch,
            claims=claims,
            original_allowed=dict(zip(originals, theirs.allowed.tolist(), strict=True)),
            policies=policies,
        )

    def _decide_own(self, snapshot: ConsentSnapshot, *, purpose: Purpose, tracks: Sequence[TrackId]) -> BatchDecision:
        """The tracks' own answers from terms and their artists' rules, as of ``snapshot``.

        Every caller reads the snapshot afresh, in one transaction, so a
        decision never uses consent older than the last committed change (in
        any process).  If deciding fails for some artist's data, only that
        artist's tracks are denied, each with a reason; the others are decided.
        """
        context = ConsentContext(
            terms=self._terms_at(snapshot.version),
            track_artist=snapshot.owners,
            artist_terms=snapshot.artist_terms,
            rules=snapshot.rules,
        )
        return decide_isolated(context, tracks=tracks, purpose=purpose, at=self._clock())

    def consent_version(self) -> int:
        """The consent version: it moves with every committed consent change, in any process."""
        return self._consent.consent_version()

    def _terms_at(self, version: int) -> Mapping[int, Terms]:
        """Published terms, re-read only when the consent version has moved since the last read."""
        with self._terms_lock:
            seen, terms = self._terms_cache
        if seen == version:
            return terms
        fresh = self._consent.all_terms()  # terms are append-only: a newer read is a superset
        with self._terms_lock:
            self._terms_cache = (version, fresh)
        return fresh

    def now(self) -> datetime:
        """The gate's clock (rules start and end on it)."""
        return self._clock()

    def decide_purposes(
        self, *, purposes: Sequence[Purpose], tracks: Sequence[TrackId]
    ) -> tuple[dict[Purpose, BatchDecision], datetime | None]:
        """:meth:`decide` for several purposes, and until when the answers hold.

        The second value is the next moment a time-bounded rule of these tracks' artists starts or ends
        (None: the answers hold until the consent data changes), so callers may cache the answers until then.
        """
        snapshot = self._consent.consent_snapshot(tracks)  # one read of consent for every purpose
        claims = None
        if self._claims is not None and any(p not in CLAIM_EXEMPT for p in purposes):
            claims = self._claims.governing_claims(tracks)
        decisions = {p: self._decide_at(snapshot, purpose=p, tracks=tracks, claims=claims) for p in purposes}
        return decisions, next_change(snapshot.rules, at=self._clock())

    def request(self, *, actor: str, purpose: Purpose, tracks: Sequence[TrackId], action: str = "read-audio") -> Grant:
        """Decide, log every decision in one ledger batch, and hand out handles for allowed tracks.

        Small requests made at the same time by other threads of this process
        are decided and logged in the same transaction (group commit): each
        still gets its own decisions and its own ledger ticket.
        """
        _check_request(actor=actor, purpose=purpose, tracks=tracks, action=action)
        ask = _Ask(actor, purpose, tuple(tracks), action)
        if self._grouped is None or len(ask.tracks) > GROUPED_MAX_TRACKS or self._tx.in_transaction():
            # inside the caller's own unit of work the entries must commit with it, not with a batch
            return self._request_alone(ask)
        return self._grouped.submit(ask)

    def _request_group(self, asks: Sequence[_Ask]) -> list[Grant | Exception]:
        """Decide and log ``asks`` in one transaction; if that fails, each on its own (one bad ask fails alone)."""
        try:
            # decide and log in one transaction that holds consent still: no consent change can commit
            # between the two, so the ledger never shows an allow after the withdrawal that forbids it
            with self._tx.transaction():
                decided = self._decide_asks(asks)
                ticket = self._ledger.append(
                    [
                        UsageRecord(ask.actor, ask.action, ask.purpose, d.track, "allow" if d.allowed else "deny",
                                    d.reason, d.terms_version)
                        for ask, rows in zip(asks, decided, strict=True)
                        for d in rows
                    ]
                )  # fmt: skip
        except Exception as error:
            if len(asks) == 1:
                return [error]
            return [_attempt(self._request_alone, ask) for ask in asks]
        grants: list[Grant | Exception] = []
        offset = 0
        for ask, rows in zip(asks, decided, strict=True):
            grants.append(self._grant(ask, rows, ticket.part(offset, len(rows)) if ticket.count else ticket))
            offset += len(rows)
        return grants

    def _request_alone(self, ask: _Ask) -> Grant:
        answer = self._request_group([ask])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _decide_asks(self, asks: Sequence[_Ask]) -> list[list[_Decided]]:
        """Every ask's answers, deciding each purpose once for all the tracks asked about under it."""
        answers: dict[tuple[Purpose, TrackId], _Decided] = {}
        for purpose in dict.fromkeys(ask.purpose for ask in asks):
            tracks = list(dict.fromkeys(t for ask in asks if ask.purpose == purpose for t in ask.tracks))
            if not tracks:
                continue
            batch = self.decide(purpose=purpose, tracks=tracks)
            for i, (track, ok) in enumerate(zip(tracks, batch.allowed.tolist(), strict=True)):
                answers[(purpose, track)] = _Decided(
                    track, bool(ok), batch.reason_text(i), _version(batch.terms_versions[i])
                )
        return [[answers[(ask.purpose, t)] for t in ask.tracks] for ask in asks]

    def _grant(self, ask: _Ask, rows: Sequence[_Decided], logged: LedgerTicket) -> Grant:
        granted = sum(1 for d in rows if d.allowed)
        self._observer.gate_decided(ask.purpose, allowed=granted, denied=len(rows) - granted)
        allowed = tuple(
            self._minter.mint(track=d.track, purpose=ask.purpose, action=ask.action, actor=ask.actor)
            for d in rows
            if d.allowed
        )
        denied = tuple(Denial(d.track, d.reason) for d in rows if not d.allowed)
        return Grant(ask.purpose, ask.action, allowed, denied, logged)

    # -- batch work ---------------------------------------------------------
    def grant_work(
        self, *, actor: str, purpose: Purpose, tracks: Sequence[TrackId], key: str, action: str = "read-audio"
    ) -> WorkBatch:
        """Decide a batch once, log it as one ledger append keyed by ``key``, and sign a grant for a worker.

        ``action`` is what the grant opens: ``read-audio`` (the worker's
        :class:`GrantedReader`) or ``read-plays`` (:meth:`read_work_plays`).

        Asking again with the same ``key`` (a task resumed after its driver
        died) logs nothing new and grants exactly what was logged the first
        time; the results are re-checked against consent in :meth:`accept_work`.
        """
        tracks = list(dict.fromkeys(tracks))
        _check_request(actor=actor, purpose=purpose, tracks=tracks, action=action)
        batch = self.decide(purpose=purpose, tracks=tracks)
        records = [
            UsageRecord(
                actor,
                action,
                purpose,
                track,
                "allow" if ok else "deny",
                f"{batch.reason_text(i)}; {key}",
                _version(batch.terms_versions[i]),
            )
            for i, (track, ok) in enumerate(zip(tracks, batch.allowed.tolist(), strict=True))
        ]
        logged, fresh = self._ledger.append_once(records, key=f"{key}/grant")
        if fresh:
            allowed = [r.track for r in records if r.decision == "allow"]
            denied = [
                Denial(TrackId(str(r.track)), batch.reason_text(i))
                for i, r in enumerate(records)
                if r.decision != "allow"
            ]
        else:  # a resumed task: grant what was logged the first time (integrated first if still queued)
            entries = self._ledger.entries(list(self._ledger.sequences(logged)))
            allowed = [e.track for e in entries if e.decision == "allow"]
            denied = [Denial(TrackId(str(e.track)), e.reason) for e in entries if e.decision != "allow"]
        allowed_ids = [TrackId(str(t)) for t in allowed]
        known = self._catalog.get_tracks(allowed_ids)
        items = tuple(GrantItem(t, known[t].content_sha256) for t in allowed_ids if t in known)
        grant = self._signer.sign(key=key, purpose=purpose, actor=actor, items=items)
        return WorkBatch(grant, tuple(denied), logged, fresh)

    def accept_work(
        self, grant: WorkGrant, outputs: Mapping[TrackId, bytes], *, feature_kind: str | None = None
    ) -> list[TrackId]:
        """Take a worker's results back: keep only tracks the grant names whose consent still holds now.

        With ``feature_kind`` the kept results are stored as features (in one
        transaction, replacing earlier ones, so a retried task stores nothing
        twice).  Results of tracks whose consent was withdrawn while the batch
        ran are discarded and logged (once per batch).  Returns the kept tracks.
        """
        self._verifier.authentic(grant)
        stray = [t for t in outputs if t not in set(grant.tracks)]
        if stray:
            raise AccessDenied(
                f"results for track {stray[0]} which grant {grant.key!r} does not cover",
                hint="a worker may only return results for the tracks of its grant",
            )
        tracks = list(outputs)
        if not tracks:
            return []
        decision = self.decide(purpose=grant.purpose, tracks=tracks)
        kept = [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if ok]
        withdrawn = [
            UsageRecord(
                grant.actor,
                "write-features",
                grant.purpose,
                track,
                "deny",
                f"{decision.reason_text(i)}; discarded; {grant.key}",
                _version(decision.terms_versions[i]),
            )
            for i, (track, ok) in enumerate(zip(tracks, decision.allowed.tolist(), strict=True))
            if not ok
        ]
        if withdrawn:
            self._ledger.append_once(withdrawn, key=f"{grant.key}/accept")
        if feature_kind is not None:
            items = [(t, feature_kind, grant.purpose, outputs[t]) for t in kept]
            self._features.put_features(items, self._clock())
        return kept

    def read_work_plays(
        self, grant: WorkGrant, *, purpose: Purpose, batch: int = 50_000, users: Sequence[str] | None = None
    ) -> Iterator[list[PlayEvent]]:
        """Play events of the tracks a genuine, unexpired ``purpose`` grant names, in pages of ``batch``.

        The batch-job counterpart of :meth:`read_plays`: the grant was logged
        when :meth:`grant_work` issued it, so reading logs nothing more.
        ``users`` narrows the read to those listeners' plays.
        """
        self._verifier.check(grant, purpose=purpose)
        if not grant.items or (users is not None and not users):
            return iter(())
        return self._plays.iter_plays(list(grant.tracks), batch=batch, users=users)

    def count_work_plays(
        self, grant: WorkGrant, *, purpose: Purpose, min_ms: int
    ) -> tuple[list[str], list[TrackId], list[int]]:
        """Columns (listener, track, plays of at least ``min_ms``) of the tracks a genuine ``purpose`` grant names.

        Like :meth:`read_work_plays`, but counted by the database: one row per
        (listener, track) pair instead of one object per play.
        """
        self._verifier.check(grant, purpose=purpose)
        if not grant.items:
            return [], [], []
        return self._plays.play_pair_counts(list(grant.tracks), min_ms=min_ms)

    # -- content ----------------------------------------------------------
    def read_audio(self, handle: TrackHandle) -> bytes:
        """Original uploaded bytes of the handle's track."""
        self._check_live(handle, action="read-audio")
        return self._blobs.get(self._track(handle.track).content_sha256)

    def decode_audio(
        self, handle: TrackHandle, *, mono: bool = False, target_sr: int | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Decoded float32 samples (frames[, channels]) and their sample rate in Hz."""
        self._check_live(handle, action="read-audio")
        sha256 = self._track(handle.track).content_sha256
        fresh = self._fresh.take((sha256, mono, target_sr))  # decoded as it was admitted a moment ago
        if fresh is not None:
            return fresh
        return _decode.decode(self._blobs.get(sha256), mono=mono, target_sr=target_sr, limits=self._limits)

    def read_feature(self, handle: TrackHandle, kind: str) -> bytes | None:
        """A stored feature, or None; one derived under a purpose no longer allowed is withheld."""
        self._check_live(handle, action="read-features")
        found = self._features.get_feature(handle.track, kind)
        if found is None:
            return None
        derived_under, data = found
        if derived_under != handle.purpose:
            still_allowed = self.decide(purpose=derived_under, tracks=[handle.track]).allowed
            if not bool(still_allowed[0]):
                return None
        return data

    def write_feature(self, handle: TrackHandle, kind: str, data: bytes) -> None:
        """Store a feature derived under the handle's purpose (purged if that purpose is revoked)."""
        self._check_live(handle, action="write-features")
        self._features.put_feature(handle.track, kind, handle.purpose, data, self._clock())

    def read_plays(
        self,
        handles: Sequence[TrackHandle],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[list[PlayEvent]]:
        """Listening events of the handles' tracks, in pages; every handle must grant read-plays."""
        for handle in handles:
            self._minter.check(handle, action="read-plays")
        return self._plays.iter_plays([h.track for h in handles], since=since, until=until)

    def read_user_plays(self, *, actor: str, purpose: Purpose, user_id: str, limit: int = 1000) -> list[PlayEvent]:
        """One listener's recent plays, keeping only tracks allowed for ``purpose``.

        Serving reads this on every request, so the ledger records each
        (actor, purpose, track) use at most once per ``use_log_window_s``.
        """
        plays = self._plays.user_plays(user_id, limit=limit)
        tracks = list(dict.fromkeys(p.track_id for p in plays))
        if not tracks:
            return []
        decision = self.decide(purpose=purpose, tracks=tracks)
        allowed = {t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if ok}
        self._log_uses(actor, purpose, "read-plays", tracks, decision)
        return [p for p in plays if p.track_id in allowed]

    def read_track_plays(
        self,
        *,
        actor: str,
        purpose: Purpose,
        tracks: Sequence[TrackId],
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[list[PlayEvent]]:
        """Play events of those ``tracks`` allowed for ``purpose``, in pages.

        For reports that are read again and again (an artist's reach page):
        like ``read_user_plays``, each (actor, purpose, track) use is logged
        at most once per ``use_log_window_s``.
        """
        tracks = list(dict.fromkeys(tracks))
        _check_request(actor=actor, purpose=purpose, tracks=tracks, action="read-plays")
        if not tracks:
            return iter(())
        decision = self.decide(purpose=purpose, tracks=tracks)
        self._log_uses(actor, purpose, "read-plays", tracks, decision)
        allowed = [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if ok]
        return self._plays.iter_plays(allowed, since=since, until=until) if allowed else iter(())

    def read_track_totals(self, *, actor: str, purpose: Purpose, tracks: Sequence[TrackId]) -> list[TrackId]:
        """Decide and log a read of aggregate numbers (play counts) about ``tracks``; the allowed ones.

        Like :meth:`read_track_plays` without the events: each (actor, purpose, track) read is logged at
        most once per ``use_log_window_s``, so pass one page of tracks, never a whole catalogue.
        """
        tracks = list(dict.fromkeys(tracks))
        _check_request(actor=actor, purpose=purpose, tracks=tracks, action="read-plays")
        if not tracks:
            return []
        decision = self.decide(purpose=purpose, tracks=tracks)
        self._log_uses(actor, purpose, "read-plays", tracks, decision)
        return [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if ok]

    def _log_uses(
        self, actor: str, purpose: Purpose, action: str, tracks: Sequence[TrackId], decision: BatchDecision
    ) -> None:
        keys = [use_key(actor, purpose, action, track) for track in tracks]
        fresh = self._use_dedup.first_uses(keys, window_s=self._use_log_window_s)
        records = []
        for i, track in enumerate(tracks):
            if not fresh[i]:
                continue
            ok = bool(decision.allowed[i])
            records.append(
                UsageRecord(actor, action, purpose, track, "allow" if ok else "deny", decision.reason_text(i),
                            _version(decision.terms_versions[i]))
            )  # fmt: skip
        self._ledger.append(records)
        granted = sum(1 for r in records if r.decision == "allow")
        self._observer.gate_decided(purpose, allowed=granted, denied=len(records) - granted)

    # -- uploads and purges ------------------------------------------------
    def keep_upload_decode(self, *, mono: bool, target_sr: int | None) -> None:
        """Decode uploads to this shape while validating them, for the first :meth:`decode_audio` after ingest.

        Set by the composition root when a capability reads every upload at
        ingest (identification), so the upload is decoded once, not twice.
        """
        self._upload_shape = (mono, target_sr)

    def admit_upload(self, data: bytes, *, filename: str | None = None) -> AdmittedUpload:
        """Validate an upload by decoding all of it, then store it content-addressed."""
        if self._upload_shape is None:
            info = _decode.probe_and_validate(data, limits=self._limits, filename=filename)
            digest, created = self._blobs.put_new(data)
            return AdmittedUpload(digest, info, len(data), new_blob=created)
        mono, target_sr = self._upload_shape
        info, samples, rate = _decode.validate_and_decode(
            data, mono=mono, target_sr=target_sr, limits=self._limits, filename=filename
        )
        digest, created = self._blobs.put_new(data)
        self._fresh.put((digest, mono, target_sr), samples, rate)
        return AdmittedUpload(digest, info, len(data), new_blob=created)

    def discard_upload(self, admitted: AdmittedUpload) -> bool:
        """Undo :meth:`admit_upload` when registering the track failed: no orphan original is left.

        Only a blob this upload wrote and no track references is removed, so
        an identical upload that did register keeps its original.
        """
        self._fresh.forget(admitted.sha256)
        if not admitted.new_blob or self._catalog.tracks_with_content(admitted.sha256):
            return False
        self._blobs.delete(admitted.sha256)
        return True

    def settle_upload(self, admitted: AdmittedUpload) -> None:
        """The upload is registered and its ingest hooks have run: drop its decode kept from admission."""
        self._fresh.forget(admitted.sha256)

    def decode_upload(
        self, data: bytes, *, filename: str | None = None, mono: bool = True, target_sr: int | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Validate and decode uploaded bytes that are not a catalogue track (e.g. a query); nothing is stored.

        Raises :class:`~consentune.errors.AudioRejected` exactly as an upload would.
        """
        _info, samples, rate = _decode.validate_and_decode(
            data, mono=mono, target_sr=target_sr, limits=self._limits, filename=filename
        )
        return samples, rate

    def sweep(self, *, actor: str) -> int:
        """Purge features whose purpose is no longer allowed (e.g. a time-bounded opt-in ran out)."""
        purged = 0
        for purpose, tracks in self._features.feature_tracks().items():
            decision = self.decide(purpose=purpose, tracks=tracks)
            denied = [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if not ok]
            if denied:
                purged += self.purge(actor=actor, purpose=purpose, tracks=denied)
        return purged

    def sweep_orphans(self, *, min_age_s: float = 3600.0) -> int:
        """Remove originals no track references and temp files a crash left, once ``min_age_s`` old.

        An upload stores its original before the track is registered; a crash
        in between leaves the file behind.  Storing the same bytes again makes
        the file fresh, so an upload still registering it is never swept.
        Returns how many files were removed.
        """
        cutoff = time.time() - min_age_s
        removed = self._blobs.sweep_temps(cutoff)
        for digest in self._blobs.stale_digests(cutoff):
            if self._catalog.tracks_with_content(digest):
                continue
            self._blobs.delete(digest)
            removed += 1
        if removed:
            _log.info("removed %d orphaned upload files", removed)
        return removed

    def purge(self, *, actor: str, purpose: Purpose, tracks: Sequence[TrackId]) -> int:
        """Delete everything derived from ``tracks`` under ``purpose``; log one entry per track (one transaction)."""
        with self._tx.transaction():
            purged = self._features.delete_features(tracks, purpose)
            reason = f"{purpose} no longer allowed; derived data removed ({purged} items across {len(tracks)} tracks)"
            self._ledger.append([UsageRecord(actor, "purge", purpose, track, "record", reason) for track in tracks])
        return purged

    def check_blob_store(self) -> None:
        """Return if the blob store is reachable (readiness); raise :class:`~consentune.errors.StorageError` if not."""
        self._blobs.ping()

    def _check_live(self, handle: TrackHandle, *, action: str) -> None:
        """A handle proves an earlier allow; content moves only if consent still holds now."""
        self._minter.check(handle, action=action)
        if not bool(self.decide(purpose=handle.purpose, tracks=[handle.track]).allowed[0]):
            raise AccessDenied(
                f"{handle.purpose} is no longer allowed for track {handle.track}",
                hint="consent was withdrawn or lapsed after the handle was issued",
            )

    def _track(self, track_id: TrackId) -> Track:
        track = self._catalog.get_track(track_id)
        if track is None:
            raise NotFound(f"track {track_id} not found", hint="list tracks with `consentune tracks`")
        return track


def _attempt(call: Callable[[_Ask], Grant], ask: _Ask) -> Grant | Exception:
    try:
        return call(ask)
    except Exception as error:
        return error


def _version(value: np.int64) -> int | None:
    version = int(value)
    return version if version >= 0 else None


def _check_request(*, actor: str, purpose: str, tracks: Sequence[TrackId], action: str) -> None:
    if not actor:
        raise InvalidInput("actor must be named", hint="pass who is asking, e.g. 'service:recommend-trainer'")
    if not is_wellformed_purpose(purpose):
        raise InvalidInput(f"purpose {purpose!r} is not well-formed", hint="use a purpose name such as 'recommend'")
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}", hint=f"use one of {sorted(ACTIONS)}")
    too_long = next((t for t in tracks if len(t) > MAX_TRACK_ID), None)
    if too_long is not None:
        raise InvalidInput(
            f"track id {too_long[:40]!r}… is longer than {MAX_TRACK_ID} characters",
            hint="send track ids as listed by the catalogue",
        )
    if len(tracks) > MAX_BATCH:
        raise InvalidInput(
            f"{len(tracks)} tracks in one request",
            hint=f"split into batches of at most {MAX_BATCH}",
        )


__all__ = ["AdmittedUpload", "Denial", "Grant", "PurposeGate", "WorkBatch"]
