"""kill -9 at random points of consent changes, ingest and gate batches, on SQLite and PostgreSQL.

A worker process runs a mixed workload and reports each write once it has
returned (acknowledged); it is killed with SIGKILL at a random moment
(sometimes while it is still starting).  After every kill: the service
starts (migrations fine), the ledger audit is clean, every acknowledged
write is there, every consent rule and every track has its ledger entries
and no entry names a rule or track that does not exist, pending purges are
finished by the sweep, no original is left without its track (after the
orphan sweep) nor a track without its original, and uploads work.  Bounded: 10 kills per backend.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import random
import re
import signal
import time
import wave
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.types import ORGANIZE, RECOMMEND, TRAIN_AI

KILLS = 10
PURPOSES = (TRAIN_AI, RECOMMEND, ORGANIZE)
_RULE_ID = re.compile(r"\(rule (\d+)\)$")


def _wav(seed: int) -> bytes:
    """0.6 s of seeded noise, 16 kHz mono PCM16: distinct bytes per seed, cheap to decode."""
    samples = np.random.default_rng(seed).integers(-8000, 8000, 9600, dtype=np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def _worker(settings: Settings, conn: Connection, seed: int) -> None:
    """Write forever, reporting every acknowledged write, until killed."""
    rng = random.Random(seed)
    svc = open_service(settings)
    conn.send(("ready", 0))
    artists = svc.catalog.artists()
    for n in range(10**9):
        artist = rng.choice(artists)
        roll = rng.random()
        if roll < 0.4:
            rule = svc.consent.set(artist, purpose=rng.choice(PURPOSES), allow=rng.random() < 0.5, actor="artist:k")
            conn.send(("rule", rule.id))
        elif roll < 0.6:
            data = _wav(seed * 100_000 + n)
            track = svc.catalog.ingest(data, filename="k.wav", artist=artist, title=None, actor="artist:k").track
            conn.send(("track", track.id))
        else:
            tracks = [t.id for t in svc.catalog.tracks(limit=40)]
            grant = svc.gate.request(actor="service:k", purpose=rng.choice(PURPOSES), tracks=tracks)
            conn.send(("grant", svc.ledger.sequences(grant.ledger_ticket).stop))


@dataclass
class Acknowledged:
    rules: set[int] = field(default_factory=set)
    tracks: set[str] = field(default_factory=set)
    ledger_size: int = 0

    def add(self, kind: str, value: object) -> None:
        if kind == "rule":
            self.rules.add(int(value))  # type: ignore[call-overload]
        elif kind == "track":
            self.tracks.add(str(value))
        elif kind == "grant":
            self.ledger_size = max(self.ledger_size, int(value))  # type: ignore[call-overload]


def _run_and_kill(settings: Settings, seed: int, rng: random.Random, acked: Acknowledged) -> None:
    ctx = mp.get_context("fork")  # already imported: the worker is writing within a fraction of a second
    mine, theirs = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(settings, theirs, seed), daemon=True)
    worker.start()
    theirs.close()
    during_start = seed % 4 == 3
    deadline = time.monotonic() + (rng.uniform(0.0, 0.4) if during_start else 60.0)
    ready = False
    while time.monotonic() < deadline:
        if mine.poll(0.01):
            kind, value = mine.recv()
            if kind == "ready" and not ready:
                ready = True
                deadline = time.monotonic() + (rng.uniform(0.05, 1.5) if not during_start else 0.0)
            acked.add(kind, value)
    assert during_start or ready, "the worker did not start within 60 s"
    os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join(timeout=30)
    try:
        while mine.poll(0):
            acked.add(*mine.recv())
    except EOFError:
        pass
    mine.close()


def _check(svc: Consentune, acked: Acknowledged) -> None:
    svc.ledger.integrate()  # what the killed worker queued (acknowledged) joins the log now
    report = svc.ledger.audit()
    assert report.ok, report.problems
    entries = svc.ledger.entries(range(svc.ledger.size))
    assert svc.ledger.size >= acked.ledger_size
    artists = [a.id for a in svc.catalog.artists()]
    rules = {r.id for r in svc.store.rules_for_artists(artists)}
    logged_rules = {int(m.group(1)) for e in entries if e.action == "consent-set" and (m := _RULE_ID.search(e.reason))}
    assert acked.rules <= rules, "an acknowledged consent change is missing"
    assert rules == logged_rules, "a consent rule without its ledger entry, or an entry for a rule never stored"
    tracks = {t.id for t in svc.catalog.tracks(limit=10**6)}
    ingested = {e.track for e in entries if e.action == "ingest"}
    assert acked.tracks <= tracks, "an acknowledged upload is missing"
    assert tracks == ingested, "a track without its ingest entry, or an entry for a track never stored"
    svc.consent.retry_pending_purges(actor="system:test")
    assert svc.consent.purge_jobs(status="pending") == []
    svc.gate.sweep_orphans(min_age_s=0)  # the worker is dead: nothing is registering an upload
    stored = {p.name for p in svc.settings.blob_dir.rglob("*") if p.is_file()}
    assert stored == {svc.catalog.track(t).content_sha256 for t in tracks}, "an orphan original or a blob-less track"


def test_kill_9_at_random_points_loses_nothing_and_half_applies_nothing(database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url, identify_at_ingest=False)
    svc = open_service(settings)
    try:
        for name in ("Ada", "Bo"):
            artist = svc.catalog.add_artist(name, actor="admin")
            svc.catalog.ingest(_wav(len(name)), filename="a.wav", artist=artist, title=None, actor="admin")
    finally:
        svc.close()
    acked = Acknowledged()
    rng = random.Random(21)
    for kill in range(KILLS):
        _run_and_kill(settings, kill, rng, acked)
        svc = open_service(settings)
        try:
            _check(svc, acked)
            artist = svc.catalog.artists()[0]
            after = svc.catalog.ingest(_wav(10**7 + kill), filename="after.wav", artist=artist, title=None, actor="t")
            assert after.created
            acked.tracks.add(after.track.id)
        finally:
            svc.close()
    assert acked.rules and len(acked.tracks) > KILLS  # the workers did write between kills
