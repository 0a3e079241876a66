"""IdentifyService: consent-gated indexing, matching of query audio, and re-upload checks at ingest.

Every read of catalogue audio goes through the gate under the ``identify``
purpose; every indexing, removal and match is a ledger entry.  Query audio
(an upload that is not a catalogue track) is decoded by the gate without
being stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from consentune.errors import InvalidInput
from consentune.gate import PurposeGate, TrackHandle
from consentune.identify.index import FingerprintIndex, IndexStats, TrackPostings
from consentune.identify.match import THRESHOLD, Match, match_hashes
from consentune.identify.mix import MixSegment, tracklist
from consentune.identify.triplets import HOP, SAMPLE_RATE, fingerprint
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.ports import CatalogRepo, MatchRepo, StoredMatch
from consentune.types import IDENTIFY, Purpose, TrackId

_BATCH = 64  # tracks per index segment written during a build
_UPLOAD_WINDOW_S = 20.0  # an upload is checked end to end in back-to-back windows at least this long ...
_MAX_UPLOAD_WINDOWS = 48  # ... and at most this many (longer uploads get longer windows)
_CHAIN_SCALE = 0.02  # windows of one reference chain when their speed factors agree this closely ...
_CHAIN_OFFSET_S = 3.0  # ... and they place the upload at the same point of the reference (seconds)
MIX_UPLOAD_S = 480.0  # uploads at least this long are tracklisted (a DJ mix, a live set): one match per segment


@dataclass(slots=True)
class IndexReport:
    indexed: list[TrackId] = field(default_factory=list)
    denied: list[TrackId] = field(default_factory=list)
    failed: dict[TrackId, str] = field(default_factory=dict)
    audio_s: float = 0.0


@dataclass(slots=True)
class ReconcileReport:
    """What :meth:`IdentifyService.reconcile` changed; ``missing`` lists the tracks still to re-index."""

    orphans: list[TrackId] = field(default_factory=list)  # indexed, no longer in the catalogue: removed
    revoked: list[TrackId] = field(default_factory=list)  # indexed, identify no longer allowed: removed
    missing: list[TrackId] = field(default_factory=list)  # allowed, not indexed, beyond the re-index limit
    reindexed: IndexReport = field(default_factory=IndexReport)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def track_postings(track_id: str, samples: npt.NDArray[np.float32]) -> TrackPostings:
    """Reference fingerprint of mono audio at :data:`SAMPLE_RATE`, ready for the index."""
    _, hashes = fingerprint(samples)
    frames = np.rint(hashes.t).astype(np.uint32)
    return TrackPostings(track_id, hashes.key, frames, int(samples.shape[0] // HOP) + 1)


def identify_samples(
    samples: npt.NDArray[np.float32],
    index: FingerprintIndex,
    *,
    threshold: float = THRESHOLD,
    exclude: Collection[str] = (),
) -> list[Match]:
    """Matches for mono query audio at :data:`SAMPLE_RATE` (no consent checks: callers go through the service)."""
    _, hashes = fingerprint(samples, query=True)
    postings = index.lookup(hashes.key)
    frames = int(samples.shape[0] // HOP) + 1
    return match_hashes(hashes, postings, query_frames=frames, threshold=threshold, exclude=exclude)


class IdentifyService:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        catalog: CatalogRepo,
        ledger: UsageLedger,
        matches: MatchRepo,
        index: FingerprintIndex,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._gate = gate
        self._catalog = catalog
        self._ledger = ledger
        self._matches = matches
        self._index = index
        self._clock = clock

    @property
    def index(self) -> FingerprintIndex:
        return self._index

    def warm_index(self) -> int:
        """Bring this machine's copy of a shared index up to date now; returns the tracks it holds.

        A server calls it at start-up, so a machine joining a shared index replays the feed before it
        serves, not inside the first listener's or uploader's request.
        """
        return self._index.track_count()

    # -- indexing -------------------------------------------------------------
    def index_tracks(self, tracks: Sequence[TrackId], *, actor: str) -> IndexReport:
        """Fingerprint and index the tracks whose ``identify`` purpose is allowed; the rest are skipped."""
        report = IndexReport()
        for start in range(0, len(tracks), _BATCH):
            grant = self._gate.request(actor=actor, purpose=IDENTIFY, tracks=tracks[start : start + _BATCH])
            report.denied.extend(d.track for d in grant.denied)
            items = []
            for handle in grant.allowed:
                try:
                    samples = self._decode(handle)
                    items.append(track_postings(handle.track, samples))
                except InvalidInput as exc:
                    report.failed[handle.track] = exc.message
                    continue
                report.audio_s += samples.shape[0] / SAMPLE_RATE
            # logged before the index write: a kill between the two leaves a track reconcile() re-indexes,
            # never an indexed track without its entry
            self._ledger.append(
                [UsageRecord(actor, "index", IDENTIFY, i.track_id, "record",
                             f"fingerprinted and indexed ({i.keys.size} hashes)") for i in items]
            )  # fmt: skip
            self._index.add(items)
            report.indexed.extend(TrackId(i.track_id) for i in items)
        return report

    def rebuild(self, *, actor: str) -> IndexReport:
        """Index every catalogue track allowed for ``identify`` (already indexed ones are replaced)."""
        return self.index_tracks(self._all_track_ids()[0], actor=actor)

    def remove_tracks(self, tracks: Sequence[TrackId], *, actor: str, reason: str = "removed from the index") -> int:
        """Drop tracks from the index and their stored matches; one ledger entry per removed track."""
        present = [t for t in dict.fromkeys(tracks) if self._index.contains(t)]
        removed = self._index.remove(present)
        self._matches.delete_track_matches(list(tracks))
        self._ledger.append([UsageRecord(actor, "unindex", IDENTIFY, t, "record", reason) for t in present])
        return removed

    def reconcile(
        self, *, actor: str, reindex: bool = True, limit: int = 256, created_after: datetime | None = None
    ) -> ReconcileReport:
        """Bring the index back in line with the catalogue after a crash or a damaged segment.

        Indexed tracks no longer in the catalogue, or whose ``identify``
        purpose is no longer allowed, are removed (logged as ``unindex``).
        With ``reindex``, catalogue tracks allowed for ``identify`` but not
        indexed are fingerprinted again through the gate, at most ``limit``
        of them (only those created after ``created_after`` if given, so a
        periodic sweep does not retry old tracks that have no fingerprint, e.g.
        silent ones, forever); the rest are returned in ``missing``.
        """
        report = ReconcileReport()
        indexed = self._index.track_ids()
        catalogue, recent = self._all_track_ids(created_after)
        known = set(catalogue)
        report.orphans = [TrackId(t) for t in indexed if t not in known]
        present = [TrackId(t) for t in indexed if t in known]
        if present:
            ok = self._gate.decide(purpose=IDENTIFY, tracks=present).allowed.tolist()
            report.revoked = [t for t, allowed in zip(present, ok, strict=True) if not allowed]
        if report.orphans:
            self.remove_tracks(report.orphans, actor=actor, reason="no longer in the catalogue; removed from the index")
        if report.revoked:
            self.remove_tracks(report.revoked, actor=actor, reason="identify no longer allowed; removed from the index")
        if not reindex:
            return report
        in_index = set(indexed)
        absent = [t for t in recent if t not in in_index]
        if absent:
            ok = self._gate.decide(purpose=IDENTIFY, tracks=absent).allowed.tolist()
            allowed = [t for t, yes in zip(absent, ok, strict=True) if yes]
            report.reindexed = self.index_tracks(allowed[:limit], actor=actor)
            report.missing = allowed[limit:]
        return report

    def _all_track_ids(self, created_after: datetime | None = None) -> tuple[list[TrackId], list[TrackId]]:
        """Every catalogue track, and those created after ``created_after`` (all of them if None)."""
        tracks: list[TrackId] = []
        recent: list[TrackId] = []
        while page := self._catalog.list_tracks(limit=1000, offset=len(tracks)):
            tracks.extend(t.id for t in page)
            recent.extend(t.id for t in page if created_after is None or t.created_at > created_after)
        return tracks, recent

    def on_revoked(self, purpose: Purpose, tracks: Sequence[TrackId], actor: str) -> int:
        """Purger: revoking ``identify`` removes the tracks from the index and drops their matches."""
        if purpose != IDENTIFY:
            return 0
        return self.remove_tracks(tracks, actor=actor, reason="identify no longer allowed; removed from the index")

    def stats(self) -> IndexStats:
        return self._index.stats()

    # -- matching ---------------------------------------------------------------
    def identify(self, data: bytes, *, actor: str, filename: str | None = None) -> list[Match]:
        """Match query audio (not stored); each reported match is logged against the matched track."""
        samples, _ = self._gate.decode_upload(data, filename=filename, mono=True, target_sr=SAMPLE_RATE)
        found = self._allowed(identify_samples(samples, self._index))
        self._ledger.append(
            [UsageRecord(actor, "match", IDENTIFY, m.track_id, "record",
                         f"query matched (score {m.score:.1f}, {m.matched} aligned hashes)") for m in found]
        )  # fmt: skip
        return found

    def tracklist(self, data: bytes, *, actor: str, filename: str | None = None) -> list[MixSegment]:
        """Timeline of a mix (not stored): each identified segment is logged against its track.

        Segments of tracks whose consent lapsed since indexing are reported
        as unknown, like any track not in the index.
        """
        samples, _ = self._gate.decode_upload(data, filename=filename, mono=True, target_sr=SAMPLE_RATE)
        segments = self._allowed_segments(tracklist(samples, self._index))
        self._ledger.append(
            [UsageRecord(actor, "match", IDENTIFY, s.track_id, "record", _segment_note("mix", s))
             for s in segments if s.track_id is not None]
        )  # fmt: skip
        return segments

    def check_upload(self, track: TrackId, *, actor: str) -> list[StoredMatch]:
        """At ingest: match a new catalogue track against the index, store possible re-uploads, then index it.

        Matches with tracks of the same artist are not re-uploads and are
        left out.  Returns the stored matches (empty if ``identify`` is not
        allowed for the new track).
        """
        grant = self._gate.request(actor=actor, purpose=IDENTIFY, tracks=[track])
        if not grant.allowed:
            return []
        try:
            samples = self._decode(grant.allowed[0])
        except InvalidInput:
            return []
        uploader = self._catalog.track_owners([track]).get(track)
        own = {t.id for t in self._catalog.list_tracks(artist_id=uploader, limit=10**6)} if uploader else set()
        if samples.shape[0] >= MIX_UPLOAD_S * SAMPLE_RATE:
            segments = self._allowed_segments(tracklist(samples, self._index))
            found = [_segment_match(s) for s in segments if s.track_id is not None and s.track_id not in own]
            found = [m for m in found if m.track_id != track]
        else:
            found = self._allowed(self._match_windows(samples, exclude={track, *own}))
        owners = self._catalog.track_owners([TrackId(m.track_id) for m in found])
        others = [m for m in found if owners.get(TrackId(m.track_id)) != uploader]
        now = self._clock()
        stored = [_stored(track, m, now) for m in others]
        self._matches.replace_track_matches(track, stored)
        self._ledger.append(
            [UsageRecord(actor, "match", IDENTIFY, m.matched_track_id, "record",
                         f"upload {track} may re-use this track (score {m.score:.1f})") for m in stored]
        )  # fmt: skip
        postings = track_postings(track, samples)
        self._ledger.append([UsageRecord(actor, "index", IDENTIFY, track, "record", "fingerprinted and indexed")])
        self._index.add([postings])  # after its entry, as in index_tracks
        return stored

    def matches_for(self, track: TrackId) -> list[StoredMatch]:
        """Stored possible re-uploads involving ``track`` (as the upload or as the original)."""
        return self._matches.track_matches(track)

    def recent_matches(self, *, limit: int = 200) -> list[StoredMatch]:
        """The newest stored possible re-uploads across the catalogue, for operators to review."""
        return self._matches.recent_matches(limit=limit)

    # -- helpers ----------------------------------------------------------------
    def _decode(self, handle: TrackHandle) -> npt.NDArray[np.float32]:
        samples, _ = self._gate.decode_audio(handle, mono=True, target_sr=SAMPLE_RATE)
        return samples

    def keep_upload_decodes(self) -> None:
        """Have the gate decode uploads to this service's shape as it validates them (one decode per upload)."""
        self._gate.keep_upload_decode(mono=True, target_sr=SAMPLE_RATE)

    def _allowed(self, found: list[Match]) -> list[Match]:
        """Drop matches to tracks whose consent lapsed since they were indexed (purge may still be running)."""
        if not found:
            return []
        ok = self._gate.decide(purpose=IDENTIFY, tracks=[TrackId(m.track_id) for m in found]).allowed.tolist()
        return [m for m, allowed in zip(found, ok, strict=True) if allowed]

    def _allowed_segments(self, segments: list[MixSegment]) -> list[MixSegment]:
        known = [s for s in segments if s.track_id is not None]
        if not known:
            return segments
        ok = self._gate.decide(purpose=IDENTIFY, tracks=[TrackId(s.track_id or "") for s in known]).allowed.tolist()
        lapsed = {id(s) for s, allowed in zip(known, ok, strict=True) if not allowed}
        return [_as_unknown(s) if id(s) in lapsed else s for s in segments]

    def _match_windows(self, samples: npt.NDArray[np.float32], *, exclude: Collection[str]) -> list[Match]:
        """Per reference track, the aligned extent over back-to-back windows covering the whole upload.

        Each window is matched on its own (so a copy is found wherever it
        sits); the windows that agree on speed and on where the upload sits
        in the reference chain into one match whose ranges span all of them,
        so a 3-minute excerpt reports 3 minutes, not one window.
        """
        total = samples.shape[0]
        count = min(_MAX_UPLOAD_WINDOWS, max(1, round(total / (_UPLOAD_WINDOW_S * SAMPLE_RATE))))
        window = -(-total // count)
        per_track: dict[str, list[Match]] = {}
        for start in range(0, total, window):
            chunk = samples[start : start + window]
            if chunk.shape[0] < SAMPLE_RATE:
                break
            try:
                found = identify_samples(chunk, self._index, exclude=exclude)
            except InvalidInput:  # a silent stretch carries no fingerprint
                continue
            for m in found:
                per_track.setdefault(m.track_id, []).append(_shifted(m, start / SAMPLE_RATE))
        return sorted((_chain(ms) for ms in per_track.values()), key=lambda m: -m.score)


def _chain(windows: list[Match]) -> Match:
    """The best window grown by every window aligned with it (same speed, same placement)."""
    best = max(windows, key=lambda m: m.score)

    def placement(m: Match) -> float:
        return m.ref_start_s - m.query_start_s * m.time_scale

    agree = [
        m
        for m in windows
        if abs(m.time_scale - best.time_scale) <= _CHAIN_SCALE
        and abs(placement(m) - placement(best)) <= _CHAIN_OFFSET_S
    ]
    return Match(
        track_id=best.track_id,
        score=best.score,
        matched=sum(m.matched for m in agree),
        query_start_s=min(m.query_start_s for m in agree),
        query_end_s=max(m.query_end_s for m in agree),
        ref_start_s=min(m.ref_start_s for m in agree),
        ref_end_s=max(m.ref_end_s for m in agree),
        time_scale=best.time_scale,
        pitch_semitones=best.pitch_semitones,
    )


def _segment_note(what: str, s: MixSegment) -> str:
    return (f"{what} plays this track at {s.start_s:.1f}-{s.end_s:.1f} s "
            f"(track {s.ref_start_s:.1f}-{s.ref_end_s:.1f} s, confidence {s.confidence:.1f})")  # fmt: skip


def _segment_match(s: MixSegment) -> Match:
    """A mix segment as a match of the upload against the track (for stored matches and claims)."""
    return Match(
        track_id=s.track_id or "",
        score=s.confidence,
        matched=s.windows,
        query_start_s=s.start_s,
        query_end_s=s.end_s,
        ref_start_s=s.ref_start_s or 0.0,
        ref_end_s=s.ref_end_s or 0.0,
        time_scale=s.time_scale or 1.0,
        pitch_semitones=s.pitch_semitones or 0.0,
    )


def _as_unknown(s: MixSegment) -> MixSegment:
    return MixSegment(None, s.start_s, s.end_s, None, None, None, None, 0.0, 0)


def _shifted(match: Match, seconds: float) -> Match:
    return Match(
        track_id=match.track_id,
        score=match.score,
        matched=match.matched,
        query_start_s=round(match.query_start_s + seconds, 2),
        query_end_s=round(match.query_end_s + seconds, 2),
        ref_start_s=match.ref_start_s,
        ref_end_s=match.ref_end_s,
        time_scale=match.time_scale,
        pitch_semitones=match.pitch_semitones,
    )


def _stored(track: TrackId, match: Match, at: datetime) -> StoredMatch:
    return StoredMatch(
        track_id=track,
        matched_track_id=TrackId(match.track_id),
        score=match.score,
        matched=match.matched,
        query_start_s=match.query_start_s,
        query_end_s=match.query_end_s,
        ref_start_s=match.ref_start_s,
        ref_end_s=match.ref_end_s,
        time_scale=match.time_scale,
        pitch_semitones=match.pitch_semitones,
        created_at=at,
    )


__all__ = ["IdentifyService", "IndexReport", "ReconcileReport", "identify_samples", "track_postings"]
