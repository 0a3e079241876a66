"""FraudService: the detector behind the purpose gate, with stored alerts and the flagged-plays filter.

Reads of stored plays and pushed events are ``detect-fraud`` uses of the
tracks involved: the gate decides per track (fraud detection is a required
purpose in the default terms) and logs each use.  Alerts are stored with
their evidence; each member account is flagged for the alert's time
window, and ``without_flagged`` drops those plays from recommendation
training and from artists' play counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from consentune.fraud.detector import Alert, DetectorConfig, IntakeStats, StreamDetector
from consentune.fraud.live import LiveEventLog
from consentune.gate import PurposeGate
from consentune.observe import NULL_OBSERVER, Observer
from consentune.plays.parse import RowError
from consentune.ports import CatalogRepo, FraudRepo
from consentune.types import DETECT_FRAUD, ArtistId, PlayEvent

FLAG_MARGIN_S = 3600.0  # a member's plays this long before/after the alert window are flagged too
MIN_PLAY_MS = 30_000


@dataclass(frozen=True)
class ScanReport:
    alerts: list[Alert]
    stats: IntakeStats
    errors: tuple[RowError, ...]

    def to_dict(self) -> dict[str, object]:
        flagged_accounts = sorted({m for a in self.alerts for m in a.members})
        flagged_tracks = sorted({t for a in self.alerts for t in a.tracks})
        return {
            "alerts": [a.to_dict() for a in self.alerts],
            "flagged_accounts": flagged_accounts,
            "flagged_tracks": flagged_tracks,
            "intake": self.stats.as_dict(),
            "rejected_rows": [{"line": e.line, "error": e.message} for e in self.errors],
        }


@dataclass(frozen=True)
class ArtistAlert:
    """An alert as one artist sees it: their own tracks by id; listeners, networks, devices and
    other artists' tracks only counted, since those belong to other people."""

    alert: Alert
    own_tracks: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        a = self.alert
        return {
            "id": a.id,
            "score": round(a.score, 4),
            "raised_at": a.raised_at,
            "updated_at": a.updated_at,
            "window_start": a.window_start,
            "window_end": a.window_end,
            "tracks": list(self.own_tracks),
            "other_tracks": len(a.tracks) - len(self.own_tracks),
            "accounts": len(a.members),
            "networks": len(a.networks),
            "devices": len(a.devices),
            "signals": {k: round(v, 4) for k, v in a.signals.items()},
        }


def scan_events(
    events: Sequence[PlayEvent], *, config: DetectorConfig | None = None, batch: int = 20_000
) -> tuple[list[Alert], IntakeStats]:
    """Replay ``events`` in time order through a fresh detector; alerts strongest first.

    Batches hold at most ``batch`` events and one hour of event time: the detector refuses events
    more than 6 h past a batch's 90th-percentile time as clock skew, so a batch spanning days would
    lose its tail.
    """
    ordered = sorted(events, key=lambda e: e.played_at)
    return scan_chunks(_time_slices(ordered, batch=batch, span_s=3600.0), config=config)


def _time_slices(ordered: Sequence[PlayEvent], *, batch: int, span_s: float) -> Iterator[Sequence[PlayEvent]]:
    start = 0
    while start < len(ordered):
        first = ordered[start].played_at.timestamp()
        stop = start + 1
        while stop < len(ordered) and stop - start < batch and ordered[stop].played_at.timestamp() - first < span_s:
            stop += 1
        yield ordered[start:stop]
        start = stop


def scan_chunks(
    chunks: Iterable[Sequence[PlayEvent]], *, config: DetectorConfig | None = None
) -> tuple[list[Alert], IntakeStats]:
    """Bounded-memory scan: feed chunks in time order (e.g. pages of stored plays ordered by
    ``played_at``) through a fresh detector; alerts strongest first.

    Memory is the detector's state (per account, the 3-hour window, a week of distinct
    account x track pairs), not the plays.  Events more than a window older than what came before
    are counted ``late`` and dropped, so chunks must follow each other in time.
    """
    detector = StreamDetector(config)
    for chunk in chunks:
        detector.feed(detector.encoder.encode(sorted(chunk, key=lambda e: e.played_at)))
    detector.flush()
    return detector.alerts(), detector.stats


class FraudService:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        repo: FraudRepo,
        catalog: CatalogRepo,
        config: DetectorConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        live_log: LiveEventLog | None = None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        """``live_log`` shares the live detector's intake among workers (see :mod:`consentune.fraud.live`);
        without it the live detector sees only the events pushed to this process."""
        self._gate = gate
        self._repo = repo
        self._catalog = catalog
        self._config = config or DetectorConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._live = self._fresh_detector()
        self._live_ids: dict[str, str] = {}
        self._log = live_log
        self._log_epoch: str | None = None
        self._log_cursor: str | None = None
        self._observer = observer

    # -- detection ------------------------------------------------------------
    def scan_stored(self, *, actor: str) -> ScanReport:
        """Scan every stored play whose track allows ``detect-fraud``; store the alerts found."""
        tracks = [t.id for t in self._catalog.list_tracks(limit=10**9)]
        grant = self._gate.request(actor=actor, purpose=DETECT_FRAUD, tracks=tracks, action="read-plays")
        events = [play for page in self._gate.read_plays(grant.allowed) for play in page]
        alerts, stats = scan_events(events, config=self._config)
        stored = [self._with_id(a, f"fa_{secrets.token_hex(6)}") for a in alerts]
        self._repo.save_alerts(stored)
        self._observer.fraud_alerts(len(stored))
        return ScanReport(stored, stats, ())

    def push(self, events: Sequence[PlayEvent], *, actor: str) -> tuple[list[Alert], IntakeStats]:
        """Feed the live detector; only plays of tracks allowing ``detect-fraud`` are used (and logged)."""
        tracks = list(dict.fromkeys(e.track_id for e in events))
        allowed: set[str] = set()
        if tracks:
            grant = self._gate.request(actor=actor, purpose=DETECT_FRAUD, tracks=tracks, action="read-plays")
            allowed = {h.track for h in grant.allowed}
        usable = [e for e in events if e.track_id in allowed]
        with self._lock:
            raised = self._push_live(usable)
            stored = [self._with_id(a, self._stored_id(a.id)) for a in raised]
            stats = IntakeStats(**self._live.stats.as_dict())
        if stored:
            self._repo.save_alerts(stored)
            self._observer.fraud_alerts(len(stored))
        return stored, stats

    def search_collusion(self) -> list[Alert]:
        """The scheduled multi-day collusion search on the live detector (the ``fraud-collusion`` job, run
        by the scheduler leader; off the intake path).  With a shared log the leader's detector is as
        fresh as its last push; alert ids are derived as for pushes, so replicas agree."""
        with self._lock:
            raised = self._live.search_collusion()
            stored = [self._with_id(a, self._stored_id(a.id)) for a in raised]
        if stored:
            self._repo.save_alerts(stored)
            self._observer.fraud_alerts(len(stored))
        return stored

    @property
    def collusion_every_s(self) -> float:
        return self._live.config.collusion.every_s

    def _push_live(self, usable: list[PlayEvent]) -> list[Alert]:
        """Feed the detector; with a shared log, first catch up on every batch other workers logged."""
        if self._log is None:
            return self._live.push_events(usable)
        if not usable:
            return []
        epoch = self._log.epoch()
        if epoch != self._log_epoch:  # the shared log was lost (or this is our first push): start afresh
            self._live, self._live_ids = self._fresh_detector(), {}
            self._log_epoch, self._log_cursor = epoch, None
        mine = self._log.append(usable)
        raised: list[Alert] = []
        for position, batch in self._log.read(after=self._log_cursor, upto=mine):
            alerts = self._live.push_events(batch)
            self._log_cursor = position
            if position == mine:
                raised = alerts  # others' alerts are stored by the worker whose batch raised them
        return raised

    def _stored_id(self, detector_id: str) -> str:
        """Alert ids: random per process alone; derived from the shared log's epoch when replicas must agree."""
        if self._log is None:
            return self._live_ids.setdefault(detector_id, f"fa_{secrets.token_hex(6)}")
        digest = hashlib.sha256(f"{self._log_epoch}/{detector_id}".encode()).hexdigest()
        return f"fa_{digest[:12]}"

    def _fresh_detector(self) -> StreamDetector:
        return StreamDetector(self._config, clock=lambda: self._clock().timestamp())

    # -- views ----------------------------------------------------------------
    def alerts(self, *, limit: int = 100) -> list[Alert]:
        """Every alert with all its evidence: for operators and the platform, never for artists."""
        return self._repo.fraud_alerts(tracks=None, limit=limit)

    def artist_alerts(self, *, artist: ArtistId, limit: int = 100) -> list[ArtistAlert]:
        """Alerts touching at least one of the artist's tracks, showing only what is theirs."""
        own = [t.id for t in self._catalog.list_tracks(artist_id=artist, limit=10**9)]
        if not own:
            return []
        mine = set(own)
        found = self._repo.fraud_alerts(tracks=own, limit=limit)
        return [ArtistAlert(a, tuple(t for t in a.tracks if t in mine)) for a in found]

    def without_flagged(self, plays: list[PlayEvent]) -> list[PlayEvent]:
        """``plays`` minus those by flagged accounts inside their flagged windows."""
        windows = self._repo.flagged_windows(sorted({p.user_id for p in plays}))
        if not windows:
            return plays
        return [p for p in plays if not _inside(p, windows.get(p.user_id, ()))]

    def play_counts(self, *, artist: ArtistId, actor: str) -> dict[str, int]:
        """Counted plays (past 30 s) of the artist's tracks, flagged plays excluded."""
        own = [t.id for t in self._catalog.list_tracks(artist_id=artist, limit=10**9)]
        counts: dict[str, int] = dict.fromkeys(own, 0)
        if not own:
            return counts
        grant = self._gate.request(actor=actor, purpose=DETECT_FRAUD, tracks=own, action="read-plays")
        for page in self._gate.read_plays(grant.allowed):
            for play in self.without_flagged(page):
                if play.ms_played >= MIN_PLAY_MS:
                    counts[play.track_id] += 1
        return counts

    @staticmethod
    def _with_id(alert: Alert, new_id: str) -> Alert:
        return dataclasses.replace(alert, id=new_id)


def _inside(play: PlayEvent, windows: Sequence[tuple[float, float]]) -> bool:
    at = play.played_at.timestamp()
    return any(since <= at <= until for since, until in windows)


__all__ = ["FLAG_MARGIN_S", "ArtistAlert", "FraudService", "ScanReport", "scan_events"]
