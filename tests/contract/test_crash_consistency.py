"""kill -9 at random points of consent changes, ingest, play imports and gate batches, on SQLite and PostgreSQL.

A worker process runs a mixed workload and reports each write once it has
returned (acknowledged); it is killed with SIGKILL on a seed-fixed schedule:
while it is starting, a random moment after it began a given kind of write
(consent change, ingest with the re-upload check and fingerprint indexing
on, play import from a CSV file or a JSON batch, gate batch), or by itself
inside a play import's transaction after a chunk was written or inside a
fingerprint segment write.  After every
kill: the service starts (migrations fine, the fingerprint index opens and
repairs itself), the ledger audit is clean, every acknowledged write is
there, every consent rule and every track has its ledger entries and no
entry names a rule or track that does not exist, every play import is there
whole or not at all and counted once in the rollups, pending purges are
finished by the sweep, the fingerprint index holds exactly the catalogue
tracks allowed for identify (after the sweep's reconcile) and each has its
index entry, no original is left without its track nor a track without its
original, and uploads work.  Bounded: 24 kills per backend (≈1 min each on
2 cores).
"""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
import os
import random
import re
import signal
import time
import wave
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from sqlalchemy import text

from consentune.config import Settings
from consentune.consent.terms import DEFAULT_KINDS
from consentune.plays import PlayLog
from consentune.ports import PlayRow, PlayWriter
from consentune.service import Consentune, open_service, reconcile_fingerprints
from consentune.types import IDENTIFY, ORGANIZE, RECOMMEND, TRAIN_AI, ArtistId, PurposeKind, TrackId

KILLS = 24
PURPOSES = (TRAIN_AI, RECOMMEND, ORGANIZE, IDENTIFY)
# what each kill aims at, in turn; "inside-…" is the worker killing itself mid-write
TARGETS = ("start", "ingest", "plays-csv", "inside-index", "rule", "inside-plays", "plays-json", "grant")
_AIM_S = {"rule": 0.02, "grant": 0.02, "ingest": 0.15, "plays-csv": 0.3, "plays-json": 0.3}
_RULE_ID = re.compile(r"\(rule (\d+)\)$")
_PLAYS_PER_IMPORT = (300, 3000)


def _wav(seed: int) -> bytes:
    """1.2 s of seeded noise, 16 kHz mono PCM16: distinct bytes and fingerprints per seed, cheap to decode."""
    samples = np.random.default_rng(seed).integers(-8000, 8000, 19_200, dtype=np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


class _DiesInsideImport:
    """A play store whose writer kills the process after writing its first chunk, before the commit."""

    def __init__(self, store: Consentune) -> None:
        self._store = store.store

    @contextmanager
    def play_writer(self) -> Iterator[PlayWriter]:
        with self._store.play_writer() as write:

            def write_then_die(rows: Sequence[PlayRow], owners: Mapping[TrackId, ArtistId]) -> int:
                written = write(rows, owners)
                os.kill(os.getpid(), signal.SIGKILL)
                return written

            yield write_then_die

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def _die_inside_index_writes(rng: random.Random) -> None:
    """Kill this process inside its next fingerprint segment write: half-way through the folder being
    written, or after the folder is renamed into place but before the manifest lists it."""
    from consentune.identify import index as ix

    save = ix._save_segment

    def save_then_die(path: Path, keys: np.ndarray, vals: np.ndarray, meta: list[dict[str, object]]) -> None:
        if rng.random() < 0.5:
            tmp = path.with_name(path.name + ".tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            np.save(tmp / "keys.npy", keys)
            (tmp / "vals.npy").write_bytes(b"\x93NUMPY")
        else:
            save(path, keys, vals, meta)
        os.kill(os.getpid(), signal.SIGKILL)

    ix._save_segment = save_then_die


def _play_records(user: str, tracks: list[str], rng: random.Random) -> list[dict[str, object]]:
    """One import's plays, all by one user named after the import (so its rows can be counted).

    Every play has its own time: the store keeps one play per (user, time, track), so two equal rows would
    be stored once and the count would no longer tell a half import from a whole one.
    """
    now = datetime.now(UTC)
    ago = rng.sample(range(1, 30 * 86_400), rng.randint(*_PLAYS_PER_IMPORT))
    return [
        {
            "user_id": user,
            "track_id": rng.choice(tracks),
            "played_at": (now - timedelta(seconds=seconds)).isoformat(),
            "ms_played": rng.randrange(1_000, 300_000),
        }
        for seconds in ago
    ]


def _import_plays(plays: PlayLog, records: list[dict[str, object]], *, as_csv: bool, folder: Path) -> int:
    if not as_csv:
        return plays.import_records(records).imported
    path = folder / f"{records[0]['user_id']}.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return plays.import_file(path).imported


def _worker(settings: Settings, conn: Connection, seed: int, target: str) -> None:
    """Write forever, announcing each write before it starts and reporting it once acknowledged, until killed."""
    rng = random.Random(seed)
    svc = open_service(settings)
    plays = PlayLog(plays=_DiesInsideImport(svc) if target == "inside-plays" else svc.store, catalog=svc.store)
    if target == "inside-index":
        _die_inside_index_writes(rng)
    conn.send(("ready", 0))
    artists = svc.catalog.artists()
    for n in range(10**9):
        artist = rng.choice(artists)
        roll = rng.random()
        if target == "inside-index" and n == 0:  # identify allowed, then an upload: its index write dies
            conn.send(("begin", "rule"))
            conn.send(("rule", svc.consent.set(artist, purpose=IDENTIFY, allow=True, actor="artist:k").id))
            roll = 0.3
        if roll < 0.25:
            conn.send(("begin", "rule"))
            rule = svc.consent.set(artist, purpose=rng.choice(PURPOSES), allow=rng.random() < 0.5, actor="artist:k")
            conn.send(("rule", rule.id))
        elif roll < 0.5:
            conn.send(("begin", "ingest"))
            data = _wav(seed * 100_000 + n)
            track = svc.catalog.ingest(data, filename="k.wav", artist=artist, title=None, actor="artist:k").track
            conn.send(("track", track.id))
        elif roll < 0.75:
            as_csv = rng.random() < 0.5
            user = f"u{seed}-{n}"
            records = _play_records(user, [t.id for t in svc.catalog.tracks(limit=200)], rng)
            conn.send(("begin", "plays-csv" if as_csv else "plays-json"))
            conn.send(("import", (user, len(records))))
            imported = _import_plays(plays, records, as_csv=as_csv, folder=settings.home)
            assert imported == len(records)
            conn.send(("imported", user))
        else:
            conn.send(("begin", "grant"))
            tracks = [t.id for t in svc.catalog.tracks(limit=40)]
            grant = svc.gate.request(actor="service:k", purpose=rng.choice(PURPOSES), tracks=tracks)
            conn.send(("grant", svc.ledger.sequences(grant.ledger_ticket).stop))


@dataclass
class Acknowledged:
    rules: set[int] = field(default_factory=set)
    tracks: set[str] = field(default_factory=set)
    ledger_size: int = 0
    imports: dict[str, int] = field(default_factory=dict)  # every import started: user -> its rows
    imported: set[str] = field(default_factory=set)  # imports acknowledged
    in_flight: Counter[str] = field(default_factory=Counter)  # what each kill interrupted
    _begun: str = "start"

    def add(self, kind: str, value: object) -> None:
        if kind == "begin":
            self._begun = str(value)
        elif kind == "rule":
            self.rules.add(int(value))  # type: ignore[call-overload]
        elif kind == "track":
            self.tracks.add(str(value))
        elif kind == "grant":
            self.ledger_size = max(self.ledger_size, int(value))  # type: ignore[call-overload]
        elif kind == "import":
            user, rows = value  # type: ignore[misc]
            self.imports[user] = rows
        elif kind == "imported":
            self.imported.add(str(value))
        if kind not in ("begin", "import", "ready"):
            self._begun = "between writes"

    def killed(self) -> None:
        self.in_flight[self._begun] += 1
        self._begun = "start"


def _run_and_kill(settings: Settings, target: str, seed: int, rng: random.Random, acked: Acknowledged) -> None:
    ctx = mp.get_context("fork")  # already imported: the worker is writing within a fraction of a second
    mine, theirs = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(settings, theirs, seed, target), daemon=True)
    worker.start()
    theirs.close()
    deadline = time.monotonic() + (rng.uniform(0.0, 0.4) if target == "start" else 60.0)
    while time.monotonic() < deadline and worker.is_alive():
        if not mine.poll(0.005):
            continue
        try:
            kind, value = mine.recv()
        except EOFError:
            break
        acked.add(kind, value)
        if kind == "begin" and value == target:
            deadline = min(deadline, time.monotonic() + rng.uniform(0.0, _AIM_S[target]))
    if worker.is_alive():
        os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join(timeout=30)
    assert worker.exitcode == -signal.SIGKILL, f"the worker ended by itself ({worker.exitcode}), not by the kill"
    try:
        while mine.poll(0):
            acked.add(*mine.recv())
    except EOFError:
        pass
    mine.close()
    acked.killed()


def _scalar(svc: Consentune, sql: str) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def _check_plays(svc: Consentune, acked: Acknowledged) -> None:
    for user, rows in acked.imports.items():
        stored = len(svc.store.user_plays(user, limit=rows + 1))
        assert stored in (0, rows), f"import {user}: {stored} of {rows} plays stored (half an import)"
        assert stored == rows or user not in acked.imported, f"acknowledged import {user} is missing"
    total = _scalar(svc, "SELECT count(*) FROM plays")
    assert total == sum(len(svc.store.user_plays(u, limit=r + 1)) for u, r in acked.imports.items())
    assert _scalar(svc, "SELECT sum(plays) FROM track_daily") == total, "a play counted twice or not at all"
    assert _scalar(svc, "SELECT sum(plays) FROM artist_daily") == total, "a play counted twice or not at all"


def _check_index(svc: Consentune, tracks: set[str], entries: Sequence[object]) -> None:
    reconcile_fingerprints(svc, actor="system:test", reindex=True, recent_only=True)  # as the sweep
    ordered = sorted(tracks)
    allowed = svc.gate.decide(purpose=IDENTIFY, tracks=[TrackId(t) for t in ordered]).allowed.tolist()
    expected = {t for t, ok in zip(ordered, allowed, strict=True) if ok}
    index = svc.identify.index
    assert set(index.track_ids()) == expected, "the fingerprint index disagrees with the catalogue"
    svc.ledger.integrate()
    logged = {e.track for e in svc.ledger.entries(range(svc.ledger.size)) if e.action == "index"}
    assert expected <= logged, "an indexed track without its index entry"


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
    _check_plays(svc, acked)
    svc.consent.retry_pending_purges(actor="system:test")
    assert svc.consent.purge_jobs(status="pending") == []
    _check_index(svc, tracks, entries)
    svc.gate.sweep_orphans(min_age_s=0)  # the worker is dead: nothing is registering an upload
    stored = {p.name for p in svc.settings.blob_dir.rglob("*") if p.is_file()}
    assert stored == {svc.catalog.track(t).content_sha256 for t in tracks}, "an orphan original or a blob-less track"


def test_kill_9_at_random_points_loses_nothing_and_half_applies_nothing(database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url, identify_at_ingest=True)
    svc = open_service(settings)
    try:
        # identify opt-out (it is required by default) so withdrawing it purges tracks from the index
        kinds = {str(p): k.value for p, k in DEFAULT_KINDS.items()} | {IDENTIFY: PurposeKind.OPT_OUT.value}
        terms = svc.consent.publish_terms(kinds, summary="identify optional", actor="admin")
        for name in ("Ada", "Bo"):
            artist = svc.catalog.add_artist(name, actor="admin")
            svc.consent.accept_terms(artist, version=terms.version, actor="admin")
            artist = svc.catalog.artist(artist.id)
            svc.catalog.ingest(_wav(len(name)), filename="a.wav", artist=artist, title=None, actor="admin")
    finally:
        svc.close()
    acked = Acknowledged()
    rng = random.Random(21)
    repaired = 0
    for kill in range(KILLS):
        _run_and_kill(settings, TARGETS[kill % len(TARGETS)], kill, rng, acked)
        svc = open_service(settings)
        try:
            repaired += svc.identify.index.recovery.repaired  # type: ignore[attr-defined]
            _check(svc, acked)
            artist = svc.catalog.artists()[0]
            after = svc.catalog.ingest(_wav(10**7 + kill), filename="after.wav", artist=artist, title=None, actor="t")
            allowed = bool(svc.gate.decide(purpose=IDENTIFY, tracks=[after.track.id]).allowed[0])
            assert after.created and svc.identify.index.contains(after.track.id) == allowed
            acked.tracks.add(after.track.id)
        finally:
            svc.close()
    print(f"\nkills by what they interrupted: {dict(acked.in_flight)}; index repaired at open {repaired} times")
    assert acked.rules and len(acked.tracks) > KILLS and acked.imported  # the workers did write between kills
    assert acked.in_flight["plays-csv"] + acked.in_flight["plays-json"] >= KILLS // len(TARGETS)  # inside-plays
    assert repaired >= KILLS // len(TARGETS)  # every inside-index kill left a folder the next start repaired
