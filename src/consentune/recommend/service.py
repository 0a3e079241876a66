"""RecommendService: consent-aware training and serving on the platform's own catalogue and plays.

Training asks the gate for ``recommend`` on every track (each decision is a
ledger entry naming the track, so a training run's inputs are provable) and
reads plays only of allowed tracks.  Serving folds the listener's recent
plays into the model without retraining, recommends only tracks whose
``recommend`` consent holds right now (a revocation removes a track from
served lists immediately), fills cold-start slots with new uploads that
match the listener's tags, and logs every impression.
"""

from __future__ import annotations

import logging
import math
import pickle
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp

from consentune.catalog import Catalog
from consentune.errors import InvalidInput, NotFound
from consentune.gate import PurposeGate
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.recommend.coldstart import TagLinear, TagVocabulary
from consentune.recommend.interactions import Weighting
from consentune.recommend.models import IALS, ItemKNN, Recommender, RP3Beta
from consentune.recommend.stacking import TwoStage
from consentune.recommend.store import MODEL_PREFIX, ModelStore
from consentune.types import RECOMMEND, PlayEvent, Purpose, TrackId

_log = logging.getLogger(__name__)
LONG_TAIL_TARGET = 0.13  # share of served slots for emerging artists; see serving_model
POPULARITY_DAMPING = 0.0
MIN_PLAY_MS = 30_000  # a play counts once it passed 30 s, as royalty rules do
COLD_START_SLOTS = 2


@dataclass(frozen=True)
class Recommendation:
    track: TrackId
    score: float
    source: str  # "model" or "cold-start"


@dataclass(frozen=True)
class TrainReport:
    model_id: str
    tracks_used: int
    tracks_refused: int
    users: int
    plays: int
    seconds: float


@dataclass
class _Snapshot:
    model_id: str
    model: Recommender
    items: list[TrackId]
    item_index: dict[TrackId, int]
    allowed: np.ndarray[Any, np.dtype[np.bool_]]
    allowed_at: float
    content: _Content | None = None


@dataclass(frozen=True)
class _Content:
    """The tag model trained beside the play model: scores new uploads from their tags alone."""

    vocabulary: TagVocabulary
    model: TagLinear


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RecommendService:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        catalog: Catalog,
        ledger: UsageLedger,
        models: ModelStore,
        model_factory: Callable[[], Recommender],
        consent_ttl_s: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        play_filter: Callable[[list[PlayEvent]], list[PlayEvent]] | None = None,
        on_impressions: Callable[[list[TrackId], datetime], None] | None = None,
    ) -> None:
        """``play_filter`` drops plays that must not train the model (fraud detection's flagged plays);
        ``on_impressions`` counts each served recommendation (the artists' reach rollups)."""
        self._gate = gate
        self._on_impressions = on_impressions
        self._play_filter = play_filter
        self._catalog = catalog
        self._ledger = ledger
        self._models = models
        self._factory = model_factory
        self._consent_ttl_s = consent_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._fresh: tuple[str, float, list[TrackId], dict[TrackId, list[str]]] | None = None

    # -- training -------------------------------------------------------------
    def train(self, *, actor: str) -> TrainReport:
        started = time.perf_counter()
        tracks = [t.id for t in self._catalog.tracks(limit=10**9)]
        grant = self._gate.request(actor=actor, purpose=RECOMMEND, tracks=tracks, action="read-plays")
        counts: Counter[tuple[str, TrackId]] = Counter()
        plays = 0
        for page in self._gate.read_plays(grant.allowed):
            for play in self._play_filter(page) if self._play_filter else page:
                if play.ms_played >= MIN_PLAY_MS:
                    counts[(play.user_id, play.track_id)] += 1
                    plays += 1
        items = [h.track for h in grant.allowed]
        if plays == 0:
            raise InvalidInput(
                f"no plays to train on: {len(items)} tracks allow recommendations, "
                f"{len(grant.denied)} refuse, and none of the allowed ones was played for {MIN_PLAY_MS / 1000:g} s",
                hint="import listening first (`consentune plays import FILE` or POST /v1/plays), then train",
            )
        item_index = {t: i for i, t in enumerate(items)}
        users = sorted({u for u, _ in counts})
        user_index = {u: i for i, u in enumerate(users)}
        model_id = self.publish(
            _matrix(counts, user_index, item_index), items, actor=actor, refused=len(grant.denied), plays=plays
        )
        return TrainReport(model_id, len(items), len(grant.denied), len(users), plays, time.perf_counter() - started)

    def publish(
        self,
        matrix: sp.csr_matrix,
        items: Sequence[TrackId],
        *,
        actor: str,
        refused: int,
        plays: int,
        model_id: str | None = None,
        key: str | None = None,
    ) -> str:
        """Fit a model on ``matrix`` (users x ``items`` play counts), publish it, record it in the ledger.

        For batch jobs that read plays through the gate themselves: a fixed
        ``model_id`` and ledger ``key`` make a retried publish replace the
        same model and log nothing twice.  Returns the model id.
        """
        items = list(items)
        model = self._factory()
        model.fit(matrix)
        model_id = model_id or f"{MODEL_PREFIX}{self._clock().strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"
        began, cpu = time.perf_counter(), time.process_time()
        self._save(model_id, model, items, _content_model(matrix, items, self._catalog.tags(items)))
        _log.info("save %s: %.1f s wall, %.1f CPU-s", model_id, time.perf_counter() - began, time.process_time() - cpu)
        reason = (
            f"model {model_id}: {len(items)} tracks allowed, {refused} refused, {matrix.shape[0]} users, {plays} plays"
        )
        if key is None:
            self._ledger.append([UsageRecord(actor, "train", RECOMMEND, None, "record", reason)])
        else:
            self._ledger.append_once(
                [UsageRecord(actor, "train", RECOMMEND, None, "record", f"{reason}; {key}")], key=key
            )
        with self._lock:
            self._snapshot = None  # next request loads the new model
        return model_id

    # -- serving --------------------------------------------------------------
    def for_user(self, user_id: str, *, n: int = 10, actor: str) -> list[Recommendation]:
        snap = self._current()
        history = self._gate.read_user_plays(actor=actor, purpose=RECOMMEND, user_id=user_id)
        row = _user_row(history, snap.item_index, len(snap.items))
        allowed = self._allowed(snap)
        items, scores = snap.model.recommend(row, n=n + 10, allowed=allowed)
        recs = [
            Recommendation(snap.items[i], float(s), "model")
            for i, s in zip(items.tolist(), scores.tolist(), strict=True)
        ]
        recs = self._still_allowed(recs)[:n]  # the live check: a revocation in any worker applies at once
        cold = self._cold_start(history, row, snap, limit=min(COLD_START_SLOTS, n))
        recs = _interleave(recs, self._still_allowed(cold), n)
        if recs:
            self._ledger.append(
                [
                    UsageRecord(actor, "recommend", RECOMMEND, r.track, "allow", f"recommended ({r.source})")
                    for r in recs
                ]
            )
            if self._on_impressions is not None:
                self._on_impressions([r.track for r in recs], self._clock())
        return recs

    def _still_allowed(self, recs: list[Recommendation]) -> list[Recommendation]:
        if not recs:
            return recs
        ok = self._gate.decide(purpose=RECOMMEND, tracks=[r.track for r in recs]).allowed.tolist()
        return [r for r, allowed in zip(recs, ok, strict=True) if allowed]

    def on_revoked(self, purpose: Purpose, tracks: Sequence[TrackId], _actor: str) -> int:
        """Purger hook: a revoked track leaves served lists at once (and the model at the next training)."""
        if purpose != RECOMMEND:
            return 0
        with self._lock:
            self._fresh = None  # cold-start candidates are re-decided on the next request
            snap = self._snapshot
            if snap is not None:
                for track in tracks:
                    index = snap.item_index.get(track)
                    if index is not None:
                        snap.allowed[index] = False
        return 0

    # -- internals ------------------------------------------------------------
    def _current(self) -> _Snapshot:
        with self._lock:
            snap = self._snapshot
        if snap is not None and time.monotonic() - snap.allowed_at <= self._consent_ttl_s:
            return snap
        if snap is not None and self._newest_id() == snap.model_id:
            return snap
        model_id, model, items, content = self._load_latest()
        allowed = self._decide(items)
        index = {t: i for i, t in enumerate(items)}
        snap = _Snapshot(model_id, model, items, index, allowed, time.monotonic(), content)
        with self._lock:
            self._snapshot = snap
        return snap

    def _allowed(self, snap: _Snapshot) -> np.ndarray[Any, np.dtype[np.bool_]]:
        if time.monotonic() - snap.allowed_at > self._consent_ttl_s:
            fresh = self._decide(snap.items)
            with self._lock:
                snap.allowed, snap.allowed_at = fresh, time.monotonic()
        return snap.allowed

    def _decide(self, items: list[TrackId]) -> np.ndarray[Any, np.dtype[np.bool_]]:
        if not items:
            return np.zeros(0, dtype=bool)
        return np.array(self._gate.decide(purpose=RECOMMEND, tracks=items).allowed, dtype=bool)

    def _cold_start(
        self, history: list[PlayEvent], row: sp.csr_matrix, snap: _Snapshot, *, limit: int
    ) -> list[Recommendation]:
        """New tracks (no plays in the model) sharing a tag with the listener's, best first.

        Ranked by the content model (:class:`TagLinear`) trained with the play
        model; without one (too few tagged tracks then) by tag-profile cosine.
        """
        if limit <= 0:
            return []
        fresh, fresh_tags = self._fresh_tracks(snap)
        if not fresh:
            return []
        heard = list(dict.fromkeys(p.track_id for p in history))
        heard_tags = self._catalog.tags(heard)
        profile = Counter(tag for track in heard for tag in heard_tags.get(track, ()))
        shared = [t for t in fresh if any(g in profile for g in fresh_tags.get(t, ()))]
        if not shared:
            return []
        if snap.content is not None and row.nnz:
            tag_rows = snap.content.vocabulary.rows([fresh_tags[t] for t in shared])
            values = snap.content.model.scores(row, tag_rows)[0].tolist()
        else:
            norm = math.sqrt(sum(v * v for v in profile.values()))
            values = [sum(profile[g] for g in fresh_tags[t]) / (norm * math.sqrt(len(fresh_tags[t]))) for t in shared]
        scored = [Recommendation(t, float(v), "cold-start") for t, v in zip(shared, values, strict=True)]
        return sorted(scored, key=lambda r: (-r.score, r.track))[:limit]

    def _fresh_tracks(self, snap: _Snapshot) -> tuple[list[TrackId], dict[TrackId, list[str]]]:
        """Consenting tracks the model has never seen, with their tags; refreshed every ``consent_ttl_s``."""
        cached = self._fresh
        if cached is not None and cached[0] == snap.model_id and time.monotonic() - cached[1] < self._consent_ttl_s:
            return cached[2], cached[3]
        fresh = [t.id for t in self._catalog.tracks(limit=10**9) if t.id not in snap.item_index]
        if fresh:
            ok = self._gate.decide(purpose=RECOMMEND, tracks=fresh).allowed.tolist()
            fresh = [t for t, allowed in zip(fresh, ok, strict=True) if allowed]
        tags = self._catalog.tags(fresh)
        self._fresh = (snap.model_id, time.monotonic(), fresh, tags)
        return fresh, tags

    def _save(self, model_id: str, model: Recommender, items: list[TrackId], content: _Content | None) -> None:
        saved = {"model_id": model_id, "model": model, "items": items, "content": content}
        self._models.put(model_id, pickle.dumps(saved, pickle.HIGHEST_PROTOCOL))

    def _newest_id(self) -> str | None:
        return self._models.newest()

    def _load_latest(self) -> tuple[str, Recommender, list[TrackId], _Content | None]:
        newest = self._models.newest()
        if newest is None:
            raise NotFound("no recommendation model trained yet", hint="run `consentune recommend train`")
        # our own model, written by _save; a shared store seals it (SealedModels) so nobody else's loads
        saved = pickle.loads(self._models.get(newest))
        return saved["model_id"], saved["model"], saved["items"], saved.get("content")


def serving_model() -> Recommender:
    """The model the service trains: the configuration that led `consentune bench recommend`.

    A two-stage model over iALS on BM25-weighted counts (192 factors,
    regularisation 50, alpha 1), RP3beta (α 0.8, β 0.3) and item-kNN (400
    neighbours), with a long-tail slot target and popularity damping chosen
    on the inner split of Last.fm 2K; see docs/recommend.md.  On a platform
    with too little listening to learn the stage it averages the three.
    """
    members: list[Recommender] = [
        IALS(factors=192, regularization=50.0, alpha=1.0, threads=2, seed=0, weighting=Weighting("bm25")),
        RP3Beta(alpha=0.8, beta=0.3, weighting=Weighting("log1p")),
        ItemKNN(k=400, weighting=Weighting("log1p")),
    ]
    return TwoStage(members, long_tail_target=LONG_TAIL_TARGET, popularity_damping=POPULARITY_DAMPING)


def _content_model(matrix: sp.csr_matrix, items: list[TrackId], tags: dict[TrackId, list[str]]) -> _Content | None:
    """The tag model for cold start, or None while too few tracks share tags to learn one."""
    names = sorted({tag for track in items for tag in tags.get(track, ())})
    if not names:
        return None
    vocabulary = TagVocabulary(names)
    item_tags = vocabulary.rows([tags.get(track, []) for track in items])
    model = TagLinear(l2=100.0, weighting=Weighting("log1p"))
    try:
        model.fit(matrix, item_tags)
    except InvalidInput:
        return None
    return _Content(vocabulary, model)


def _matrix(counts: Counter[tuple[str, TrackId]], users: dict[str, int], items: dict[TrackId, int]) -> sp.csr_matrix:
    rows = [users[u] for u, _ in counts]
    cols = [items[t] for _, t in counts]
    data = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    return sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)


def _user_row(history: list[PlayEvent], item_index: dict[TrackId, int], n_items: int) -> sp.csr_matrix:
    counts = Counter(item_index[p.track_id] for p in history if p.ms_played >= MIN_PLAY_MS and p.track_id in item_index)
    cols = list(counts)
    data = np.array([counts[c] for c in cols], dtype=np.float32)
    return sp.csr_matrix((data, ([0] * len(cols), cols)), shape=(1, n_items), dtype=np.float32)


def _interleave(model: list[Recommendation], cold: list[Recommendation], n: int) -> list[Recommendation]:
    """Give cold-start picks fixed slots (positions 3 and 7 of 10) so new uploads get real reach."""
    out = list(model[: n - len(cold)])
    for slot, rec in zip((2, 6), cold, strict=False):
        out.insert(min(slot, len(out)), rec)
    return out[:n]


__all__ = ["RecommendService", "Recommendation", "TrainReport"]
