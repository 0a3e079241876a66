"""OrganizeService: consent-aware analysis, descriptors, similar tracks and duplicate groups.

Every read of audio or stored descriptors goes through the gate under the
``organize`` purpose, so each use and refusal is a ledger entry.  Tracks
whose ``organize`` consent does not hold are never decoded.  On revocation
the gate purges the stored descriptors and :meth:`on_revoked` drops the
tracks from the in-memory similarity index at once.

Each process holds its own similarity index, loaded from the stored
descriptors on first use.  Descriptors written since by anyone (a batch job,
another worker, another host) are picked up at most ``refresh_s`` later:
the stored ones are stamped with their write time, and each refresh reads
those written since the last one (looking back a minute, since a write is
stamped before it commits).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from threadpoolctl import threadpool_limits

from consentune.errors import AccessDenied, ConsentuneError
from consentune.gate import PurposeGate, TrackHandle
from consentune.organize.descriptors import FEATURE_KIND, Descriptors, analyze
from consentune.organize.duplicates import DuplicateGroup, DuplicateMatch, NearDuplicateFinder, describe_groups
from consentune.organize.embedding import EMBEDDING_DIM
from consentune.organize.similar import Neighbour, SimilarityIndex
from consentune.organize.tags import NormalizedTag, TagNormalizer
from consentune.ports import CatalogRepo, FeatureRepo
from consentune.types import ORGANIZE, Purpose, TrackId

_BATCH = 200
REFRESH_S = 10.0  # descriptors written elsewhere reach this process's similarity index at most this late
_LOOK_BACK = timedelta(seconds=60)  # a write is stamped before it commits: each refresh looks back this far


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AnalyzeReport:
    analysed: list[TrackId] = field(default_factory=list)
    refused: list[TrackId] = field(default_factory=list)
    failed: dict[TrackId, str] = field(default_factory=dict)
    seconds: float = 0.0


class OrganizeService:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        catalog: CatalogRepo,
        features: FeatureRepo,
        near_finder: NearDuplicateFinder | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gate = gate
        self._catalog = catalog
        self._features = features
        self._near = near_finder
        self._index = SimilarityIndex(dim=EMBEDDING_DIM)
        self._index_ready = False
        self._index_lock = threading.Lock()
        self._refresh_s = refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._loaded_at = 0.0  # monotonic time of the last load or refresh
        self._loaded_since = datetime.min.replace(tzinfo=UTC)  # descriptors written from then on are in

    @property
    def index(self) -> SimilarityIndex:
        """The in-memory similarity index (loaded on the first similar-track query)."""
        return self._index

    # -- analysis -----------------------------------------------------------
    def analyze(
        self,
        tracks: Sequence[TrackId],
        *,
        actor: str,
        progress: Callable[[TrackId, str], None] | None = None,
    ) -> AnalyzeReport:
        """Decode and describe each track whose ``organize`` consent holds; store the result as a feature."""
        started = time.perf_counter()
        report = AnalyzeReport()
        for start in range(0, len(tracks), _BATCH):
            batch = list(tracks[start : start + _BATCH])
            grant = self._gate.request(actor=actor, purpose=ORGANIZE, tracks=batch, action="read-audio")
            for denial in grant.denied:
                report.refused.append(denial.track)
                if progress:
                    progress(denial.track, "refused")
            for handle in grant.allowed:
                status = self._analyze_one(handle, actor=actor, report=report)
                if progress:
                    progress(handle.track, status)
        report.seconds = time.perf_counter() - started
        return report

    def _analyze_one(self, handle: TrackHandle, *, actor: str, report: AnalyzeReport) -> str:
        try:
            samples, rate = self._gate.decode_audio(handle)
            # one BLAS thread: the matrices are small, and spinning worker threads only burn shared cores
            with threadpool_limits(limits=1):
                found = analyze(samples, rate)
            writer = self._gate.request(actor=actor, purpose=ORGANIZE, tracks=[handle.track], action="write-features")
            if not writer.allowed:  # consent changed between read and write: store nothing
                report.refused.append(handle.track)
                return "refused"
            self._gate.write_feature(writer.allowed[0], FEATURE_KIND, found.to_bytes())
        except AccessDenied:
            report.refused.append(handle.track)
            return "refused"
        except ConsentuneError as exc:
            report.failed[handle.track] = exc.message
            return "failed"
        if self._index_ready:
            self._index.add([handle.track], found.vector()[None, :])
        report.analysed.append(handle.track)
        return "analysed"

    def pending(self, tracks: Sequence[TrackId]) -> list[TrackId]:
        """Tracks without stored descriptors (reads only which tracks have features, not their content)."""
        done = set(self._features.feature_tracks().get(ORGANIZE, []))
        return [t for t in tracks if t not in done]

    # -- reading ------------------------------------------------------------
    def descriptors(self, track: TrackId, *, actor: str) -> Descriptors | None:
        """Stored descriptors, None when the track was not analysed; AccessDenied without consent."""
        handle = self._handle(track, actor=actor, action="read-features")
        data = self._gate.read_feature(handle, FEATURE_KIND)
        return None if data is None else Descriptors.from_bytes(data)

    def similar(self, track: TrackId, *, n: int = 10, actor: str) -> list[Neighbour] | None:
        """The most similar consenting tracks; None when ``track`` has no descriptors yet."""
        self._handle(track, actor=actor, action="read-features")
        self._ensure_index(actor)
        found = self._index.query(track, n=n * 2 + 5)
        if found is None:
            return None
        allowed = self._gate.decide(purpose=ORGANIZE, tracks=[f.track for f in found]).allowed.tolist()
        # a consent that lapsed (no revocation event) is caught here: drop those tracks from the index too
        self._index.remove([f.track for f, ok in zip(found, allowed, strict=True) if not ok])
        return [f for f, ok in zip(found, allowed, strict=True) if ok][:n]

    def duplicates(self, track: TrackId, *, actor: str) -> list[DuplicateMatch]:
        """Tracks that are the same recording: exact (same bytes) and, with a finder, near duplicates."""
        self._handle(track, actor=actor, action="read-features")
        record = self._catalog.get_track(track)
        assert record is not None  # the gate refuses unknown tracks
        same = [t for t in self._catalog.tracks_with_content(record.content_sha256) if t != track]
        matches = [DuplicateMatch(t, "exact", 1.0) for t in self._allowed(same, actor=actor)]
        if self._near is not None:
            exact = {m.track for m in matches} | {track}
            near = [m for m in self._near.near_duplicates(track, candidates=None, actor=actor) if m.track not in exact]
            allowed = set(self._allowed([m.track for m in near], actor=actor))
            matches += [m for m in near if m.track in allowed]
        return matches

    def duplicate_groups(self, *, actor: str) -> list[list[TrackId]]:
        """Every duplicate group (≥ 2 consenting tracks: exact, and near with a finder), largest first."""
        return [group.tracks for group in self.duplicate_group_details(actor=actor)]

    def duplicate_group_details(self, *, actor: str) -> list[DuplicateGroup]:
        """Like :meth:`duplicate_groups`, each group with its kind (exact, near, mixed) and weakest link's score."""
        links: list[tuple[TrackId, DuplicateMatch]] = []
        for group in self._catalog.content_groups():
            allowed = self._allowed(group, actor=actor)
            links += [(allowed[0], DuplicateMatch(other, "exact", 1.0)) for other in allowed[1:]]
        if self._near is not None:
            candidates = self._index_tracks(actor)
            for track in candidates:
                links += [(track, m) for m in self._near.near_duplicates(track, candidates=candidates, actor=actor)]
        return describe_groups(links)

    def normalize_tags(self, tags: Sequence[str]) -> list[NormalizedTag]:
        """Map free tags onto the faceted vocabulary; catalogue artist names count as non-descriptors."""
        names = [a.name for a in self._catalog.list_artists()]
        return TagNormalizer(artist_names=names).normalize(tags)

    # -- consent --------------------------------------------------------------
    def on_revoked(self, purpose: Purpose, tracks: Sequence[TrackId], _actor: str) -> int:
        """Purger hook: revoked tracks leave the similarity index at once (the gate purges the features)."""
        if purpose != ORGANIZE:
            return 0
        return self._index.remove(tracks)

    # -- internals ------------------------------------------------------------
    def _handle(self, track: TrackId, *, actor: str, action: str) -> TrackHandle:
        grant = self._gate.request(actor=actor, purpose=ORGANIZE, tracks=[track], action=action)
        if not grant.allowed:
            raise AccessDenied(
                f"organize is not allowed for track {track}: {grant.denied[0].reason}",
                hint="the artist has not allowed content organization for this track",
            )
        return grant.allowed[0]

    def _allowed(self, tracks: Sequence[TrackId], *, actor: str) -> list[TrackId]:
        if not tracks:
            return []
        grant = self._gate.request(actor=actor, purpose=ORGANIZE, tracks=tracks, action="read-features")
        return [h.track for h in grant.allowed]

    def _index_tracks(self, actor: str) -> list[TrackId]:
        self._ensure_index(actor)
        return self._index.tracks()

    def _ensure_index(self, actor: str) -> None:
        """Load every stored embedding through the gate once; then add what was written since, every
        ``refresh_s`` (this process's own analyses are added at once)."""
        with self._index_lock:
            now = self._monotonic()
            if self._index_ready and now - self._loaded_at < self._refresh_s:
                return
            stamp = self._clock()
            if not self._index_ready:
                tracks, matrix = self._stored_vectors(self._features.feature_tracks().get(ORGANIZE, []), actor)
                self._index.build(tracks, matrix)
                self._index_ready = True
            else:
                written = self._features.features_since(FEATURE_KIND, self._loaded_since - _LOOK_BACK)
                tracks, matrix = self._stored_vectors(written, actor)
                if tracks:
                    self._index.add(tracks, matrix)
            self._loaded_at, self._loaded_since = now, stamp

    def _stored_vectors(self, stored: Sequence[TrackId], actor: str) -> tuple[list[TrackId], np.ndarray]:
        """The stored embeddings of ``stored`` whose ``organize`` consent holds, read through the gate."""
        tracks, vectors = [], []
        for start in range(0, len(stored), _BATCH):
            grant = self._gate.request(
                actor=actor, purpose=ORGANIZE, tracks=stored[start : start + _BATCH], action="read-features"
            )
            for handle in grant.allowed:
                data = self._gate.read_feature(handle, FEATURE_KIND)
                if data is not None:
                    tracks.append(handle.track)
                    vectors.append(Descriptors.from_bytes(data).vector())
        return tracks, np.stack(vectors) if vectors else np.zeros((0, EMBEDDING_DIM), np.float32)


__all__ = ["AnalyzeReport", "OrganizeService"]
