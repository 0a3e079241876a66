"""PurposeGate: the single door to audio, decoded samples and derived features.

Callers name actor, purpose, action and tracks.  The gate decides per
track from the consent registry, writes every decision (allow and deny) to
the ledger in one batch, and returns handles only for allowed tracks.
Content is then read by presenting a handle back to the gate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from consentune.consent.decide import BatchDecision, ConsentContext, decide_isolated
from consentune.consent.terms import Terms
from consentune.errors import AccessDenied, InvalidInput, NotFound
from consentune.gate import decode as _decode
from consentune.gate.blobs import BlobStore
from consentune.gate.handles import ACTIONS, HandleMinter, TrackHandle
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.ports import CatalogRepo, ConsentRepo, FeatureRepo, PlayRepo, Transactions
from consentune.types import PlayEvent, Purpose, Track, TrackId, is_wellformed_purpose

_log = logging.getLogger(__name__)

MAX_BATCH = 1_000_000
MAX_TRACK_ID = 32


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
    ledger_range: range


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
        blob_dir: Path,
        limits: _decode.AudioLimits,
        handle_ttl_s: float = 900.0,
        use_log_window_s: float = 3600.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._catalog = catalog
        self._consent = consent
        self._features = features
        self._plays = plays
        self._ledger = ledger
        self._tx = transactions
        self._blobs = BlobStore(blob_dir)
        self._limits = limits
        self._minter = HandleMinter(ttl_s=handle_ttl_s)
        self._use_log_window_s = use_log_window_s
        self._use_lock = threading.Lock()
        self._recent_uses: OrderedDict[tuple[str, str, str, str], float] = OrderedDict()
        self._clock = clock
        self._terms_lock = threading.Lock()
        self._terms_cache: tuple[int, Mapping[int, Terms]] = (-1, {})

    # -- decisions --------------------------------------------------------
    def decide(self, *, purpose: Purpose, tracks: Sequence[TrackId]) -> BatchDecision:
        """Decide without logging or granting: for read-only consent views, never for content.

        Consent is read afresh for every call, in one transaction, so a
        decision never uses consent older than the last committed change (in
        any process).  If deciding fails for some artist's data, only that
        artist's tracks are denied, each with a reason; the others are decided.
        """
        snapshot = self._consent.consent_snapshot(tracks)
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

    def request(self, *, actor: str, purpose: Purpose, tracks: Sequence[TrackId], action: str = "read-audio") -> Grant:
        """Decide, log every decision in one ledger batch, and hand out handles for allowed tracks."""
        _check_request(actor=actor, purpose=purpose, tracks=tracks, action=action)
        # decide and log in one transaction that holds consent still: no consent change can commit
        # between the two, so the ledger never shows an allow after the withdrawal that forbids it
        with self._tx.transaction():
            batch = self.decide(purpose=purpose, tracks=tracks)
            logged = self._ledger.append(
                [
                    UsageRecord(
                        actor=actor,
                        action=action,
                        purpose=purpose,
                        track=track,
                        decision="allow" if ok else "deny",
                        reason=batch.reason_text(i),
                        terms_version=_version(batch.terms_versions[i]),
                    )
                    for i, (track, ok) in enumerate(zip(tracks, batch.allowed.tolist(), strict=True))
                ]
            )
        allowed, denied = [], []
        for i, (track, ok) in enumerate(zip(tracks, batch.allowed.tolist(), strict=True)):
            if ok:
                allowed.append(self._minter.mint(track=track, purpose=purpose, action=action, actor=actor))
            else:
                denied.append(Denial(track, batch.reason_text(i)))
        return Grant(purpose, action, tuple(allowed), tuple(denied), logged)

    # -- content ----------------------------------------------------------
    def read_audio(self, handle: TrackHandle) -> bytes:
        """Original uploaded bytes of the handle's track."""
        self._check_live(handle, action="read-audio")
        return self._blobs.get(self._track(handle.track).content_sha256)

    def decode_audio(
        self, handle: TrackHandle, *, mono: bool = False, target_sr: int | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Decoded float32 samples (frames[, channels]) and their sample rate in Hz."""
        return _decode.decode(self.read_audio(handle), mono=mono, target_sr=target_sr)

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

    def _log_uses(
        self, actor: str, purpose: Purpose, action: str, tracks: Sequence[TrackId], decision: BatchDecision
    ) -> None:
        now = time.monotonic()
        records = []
        with self._use_lock:
            for i, track in enumerate(tracks):
                key = (actor, purpose, action, track)
                if now - self._recent_uses.get(key, float("-inf")) < self._use_log_window_s:
                    continue
                self._recent_uses[key] = now
                ok = bool(decision.allowed[i])
                records.append(
                    UsageRecord(actor, action, purpose, track, "allow" if ok else "deny", decision.reason_text(i),
                                _version(decision.terms_versions[i]))
                )  # fmt: skip
            while len(self._recent_uses) > 1_000_000:
                self._recent_uses.popitem(last=False)
        self._ledger.append(records)

    # -- uploads and purges ------------------------------------------------
    def admit_upload(self, data: bytes, *, filename: str | None = None) -> AdmittedUpload:
        """Validate an upload by decoding all of it, then store it content-addressed."""
        info = _decode.probe_and_validate(data, limits=self._limits, filename=filename)
        digest, created = self._blobs.put_new(data)
        return AdmittedUpload(digest, info, len(data), new_blob=created)

    def discard_upload(self, admitted: AdmittedUpload) -> bool:
        """Undo :meth:`admit_upload` when registering the track failed: no orphan original is left.

        Only a blob this upload wrote and no track references is removed, so
        an identical upload that did register keeps its original.
        """
        if not admitted.new_blob or self._catalog.tracks_with_content(admitted.sha256):
            return False
        self._blobs.delete(admitted.sha256)
        return True

    def decode_upload(
        self, data: bytes, *, filename: str | None = None, mono: bool = True, target_sr: int | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Validate and decode uploaded bytes that are not a catalogue track (e.g. a query); nothing is stored.

        Raises :class:`~consentune.errors.AudioRejected` exactly as an upload would.
        """
        _decode.probe_and_validate(data, limits=self._limits, filename=filename)
        return _decode.decode(data, mono=mono, target_sr=target_sr)

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
        removed = 0
        for path, digest in self._blobs.older_than(time.time() - min_age_s):
            if digest is not None and self._catalog.tracks_with_content(digest):
                continue
            path.unlink(missing_ok=True)
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


__all__ = ["AdmittedUpload", "Denial", "Grant", "PurposeGate"]
