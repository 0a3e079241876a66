"""``consentune bench ledger``: the sequencer at platform rate, on SQLite and PostgreSQL.

Measured per backend, in one run:

* appends/s with 1, 2 and 4 worker processes appending at once (batches of
  ``batch`` records per append, the way the gate logs a request) and single-record
  appends/s with the same workers (one play = one append);
* integration rate: queued entries integrated per second (indices, tree, head,
  checkpoint and tlog-tiles included);
* sustained: 1, 2 and 4 worker processes appending the way a gate request does
  (one transaction holding consent still, one queue row per request; a play is one
  record) for a fixed time while one integrator process runs every second beside
  them, with the queue depth sampled over time: appends/s, entries/s appended and
  integrated, and whether the queue stays bounded;
* plays through the gate: W processes, each with T threads calling the real
  ``PurposeGate.request`` for one track at a time (what a play asks) for a fixed
  time, beside one integrator, with group commit on and off in the same run
  (the ratio is the figure; off is one transaction per play);
* incremental audit of ``entries`` new entries: time and the audit process's peak RSS
  (a fresh process that imports only the ledger and the storage adapter);

plus, without a database, the offline verification time of a paged receipt
covering ``receipt_entries`` entries about one track.

Goals from issue 13: >= 50,000 entries/s on PostgreSQL with 4 workers (growing
with workers), >= 20,000/s on SQLite, incremental audit of 1M new entries
<= 30 s in <= 200 MB, a 1M-entry receipt verified in <= 5 s.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

GOALS = {
    "postgresql_appends_per_s_4_workers": 50_000,
    "sqlite_appends_per_s": 20_000,
    "audit_1m_s": 30.0,
    "audit_peak_mb": 200.0,
    "receipt_1m_verify_s": 5.0,
}
_ORIGIN = "bench.consentune/ledger"


def _ledger(url: str, home: Path) -> tuple[Any, Any]:
    """A store and a UsageLedger on ``url`` with tiles under ``home`` (no service: workers start fast)."""
    from consentune.ledger import load_or_create_signer
    from consentune.ledger.log import UsageLedger
    from consentune.storage import SqlStore, make_engine
    from consentune.storage.tiles import FileTileStore

    store = SqlStore(make_engine(url))
    signer = load_or_create_signer(home / "bench.key", _ORIGIN)
    return store, UsageLedger(store, signer, origin=_ORIGIN, tiles=FileTileStore(home / "tlog"))


def _records(n: int, worker: int) -> list[Any]:
    from consentune.ledger.log import UsageRecord

    return [
        UsageRecord("service:bench", "stream", "stream", f"trk_{(worker * 7919 + i) % 5000:06d}", "allow", "allowed", 1)
        for i in range(n)
    ]


def _append_worker(url: str, home: str, worker: int, entries: int, batch: int, start: Any, out: Any) -> None:
    _, ledger = _ledger(url, Path(home))
    records = _records(batch, worker)
    start.wait()
    began = time.perf_counter()
    cpu = time.process_time()
    done = 0
    while done < entries:
        n = min(batch, entries - done)
        ledger.append(records[:n])
        done += n
    out.put((began, time.perf_counter(), time.process_time() - cpu, done))


def _parallel_appends(url: str, home: Path, workers: int, entries: int, batch: int) -> dict[str, float]:
    """Entries/s with ``workers`` processes appending ``entries`` in total, started together."""
    context = mp.get_context("spawn")
    start, out = context.Event(), context.Queue()
    per_worker = max(1, entries // workers)
    processes = [
        context.Process(target=_append_worker, args=(url, str(home), w, per_worker, batch, start, out))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)
    start.set()
    results = [out.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    began = min(r[0] for r in results)
    ended = max(r[1] for r in results)
    total = sum(r[3] for r in results)
    return {
        "entries": total,
        "seconds": ended - began,
        "per_s": total / (ended - began),
        "cpu_s": sum(r[2] for r in results),
    }


def _gate_append_worker(
    url: str, home: str, worker: int, batch: int, ready: Any, start: Any, stop_at: Any, out: Any
) -> None:
    """Append until ``stop_at`` the way a gate request does: one transaction that holds consent still
    (``consent_snapshot`` inside the unit of work: a shared lock on the consent version) and queues one
    ledger row of ``batch`` records (a play is ``batch = 1``)."""
    from consentune.types import TrackId

    store, ledger = _ledger(url, Path(home))
    records = _records(batch, worker)
    tracks = [TrackId(r.track) for r in records]
    ready.put(worker)
    start.wait()
    began, cpu, appends = time.perf_counter(), time.process_time(), 0
    while time.time() < stop_at.value:
        with store.transaction():
            store.consent_snapshot(tracks)
            ledger.append(records)
        appends += 1
    out.put(("append", began, time.perf_counter(), time.process_time() - cpu, appends, appends * batch))


def _integrator_worker(url: str, home: str, interval_s: float, ready: Any, start: Any, done: Any, out: Any) -> None:
    """Integrate every ``interval_s`` as the API's background integrator does, until appends stop and the
    queue is empty; report entries integrated, rounds and CPU."""
    store, ledger = _ledger(url, Path(home))
    size0 = ledger.integrated_size
    ready.put(-1)
    start.wait()
    began, cpu, rounds = time.perf_counter(), time.process_time(), 0
    while True:
        finished = done.is_set()  # read before the round: a round after the last append drains the queue
        round_began = time.perf_counter()
        ledger.integrate()
        rounds += 1
        if finished and store.last_queued() < 0:
            break
        time.sleep(max(0.0, interval_s - (time.perf_counter() - round_began)))
    size = ledger.integrated_size
    out.put(("integrate", began, time.perf_counter(), time.process_time() - cpu, rounds, size - size0))


def _queue_depth(engine: Any) -> tuple[int, int]:
    """(queued entries, integrated entries) now."""
    from sqlalchemy import text

    with engine.connect() as conn:
        queued = conn.execute(text("SELECT coalesce(sum(count), 0) FROM ledger_queue")).scalar_one()
        size = conn.execute(text("SELECT size FROM ledger_head")).scalar_one()
    return int(queued), int(size)


class _Beside(NamedTuple):
    """Worker processes and one integrator process, started and ready, waiting for ``start``."""

    workers: list[Any]
    integrator: Any
    start: Any
    done: Any
    out: Any
    stop_at: Any


def _beside_integrator(
    url: str, home: Path, count: int, interval_s: float, target: Callable[..., None], args: tuple[Any, ...]
) -> _Beside:
    """Start ``count`` processes of ``target(url, home, worker, *args, ready, start, stop_at, out)`` and one
    integrator beside them; return once every one of them is ready."""
    context = mp.get_context("spawn")
    ready, start, done, out = context.Queue(), context.Event(), context.Event(), context.Queue()
    stop_at = context.Value("d", 0.0)
    workers = [
        context.Process(target=target, args=(url, str(home), w, *args, ready, start, stop_at, out))
        for w in range(count)
    ]
    integrator = context.Process(target=_integrator_worker, args=(url, str(home), interval_s, ready, start, done, out))
    for process in [*workers, integrator]:
        process.start()
    for _ in range(count + 1):
        ready.get(timeout=600)
    return _Beside(workers, integrator, start, done, out, stop_at)


def _sustained(
    url: str, home: Path, *, workers: int, batch: int, seconds: float, interval_s: float, sample_s: float = 0.5
) -> dict[str, Any]:
    """``workers`` processes append gate-style for ``seconds`` while one integrator process runs beside them.

    Sustained means the integrator keeps up: the queue depth (entries acknowledged, not yet integrated)
    is sampled every ``sample_s``; its growth over the second half of the window is reported as entries/s
    (near 0 when sustained; the append rate minus the integration rate when not).
    """
    from consentune.storage import make_engine

    appenders, integrator, start, done, out, stop_at = _beside_integrator(
        url, home, workers, interval_s, _gate_append_worker, (batch,)
    )
    engine = make_engine(url)
    depth0, size0 = _queue_depth(engine)
    began = time.perf_counter()
    stop_at.value = time.time() + seconds
    start.set()
    samples: list[tuple[float, int, int]] = []
    while time.perf_counter() - began < seconds:
        time.sleep(sample_s)
        depth, size = _queue_depth(engine)
        samples.append((round(time.perf_counter() - began, 2), depth, size - size0))
    results = [out.get(timeout=3600) for _ in appenders]
    appended_at = time.perf_counter()
    done.set()
    results.append(out.get(timeout=3600))
    drained_after = time.perf_counter() - appended_at
    for process in [*appenders, integrator]:
        process.join()
    engine.dispose()
    appends = [r for r in results if r[0] == "append"]
    integration = next(r for r in results if r[0] == "integrate")
    window = max(r[2] for r in appends) - min(r[1] for r in appends)
    entries = sum(r[5] for r in appends)
    half = [s for s in samples if s[0] >= seconds / 2]
    growth = (half[-1][1] - half[0][1]) / max(half[-1][0] - half[0][0], 1e-9) if len(half) > 1 else 0.0
    integrated_in_window = samples[-1][2] if samples else 0
    return {
        "workers": workers,
        "batch": batch,
        "seconds": window,
        "appends": sum(r[4] for r in appends),
        "appends_per_s": sum(r[4] for r in appends) / window,
        "entries": entries,
        "per_s": entries / window,
        "append_cpu_s": sum(r[3] for r in appends),
        "integrated_per_s_in_window": integrated_in_window / max(samples[-1][0], 1e-9) if samples else 0.0,
        "integrator_cpu_s": integration[3],
        "integrator_rounds": integration[4],
        "integrated_entries": integration[5],
        "queue_depth_start": depth0,
        "queue_depth_max": max((s[1] for s in samples), default=0),
        "queue_depth_end": samples[-1][1] if samples else 0,
        "queue_growth_per_s_second_half": growth,
        "drain_s_after_appends": drained_after,
        "samples": samples,
        "cpu_s": sum(r[3] for r in appends) + integration[3],
    }


PLAY_TRACKS = 2_000
GROUP_COMMIT = 256  # the service's default (CONSENTUNE_GATE_GROUP_COMMIT)


def _play_catalogue(url: str) -> None:
    """Published terms, 20 artists and ``PLAY_TRACKS`` tracks, so gate decisions read real owners and terms."""
    from datetime import UTC, datetime

    from consentune.consent.terms import default_terms
    from consentune.storage import SqlStore, make_engine
    from consentune.types import Artist, ArtistId, Track, TrackId

    store = SqlStore(make_engine(url))
    if store.get_track(TrackId(f"trk_play_{PLAY_TRACKS - 1:06d}")) is None:
        terms = store.all_terms() or {1: store.publish_terms(default_terms())}
        now = datetime.now(UTC)
        with store.transaction():
            for a in range(20):
                store.add_artist(Artist(ArtistId(f"art_play_{a:02d}"), f"Play artist {a}", now, max(terms)))
            for i in range(PLAY_TRACKS):
                track = Track(TrackId(f"trk_play_{i:06d}"), ArtistId(f"art_play_{i % 20:02d}"), f"Song {i}",
                              f"{i:064x}", "flac", 180.0, 44_100, 2, 4_000_000, now)  # fmt: skip
                store.add_track(track, filename=f"{i}.flac", actor="bench")
    store.engine.dispose()


def _play_worker(
    url: str, home: str, worker: int, threads: int, group: int, ready: Any, start: Any, stop_at: Any, out: Any
) -> None:
    """``threads`` threads each asking the gate for one play after another until ``stop_at``."""
    import threading

    from consentune.gate import AudioLimits, PurposeGate
    from consentune.storage.claims_sql import SqlClaims
    from consentune.types import STREAM, TrackId

    store, ledger = _ledger(url, Path(home))
    gate = PurposeGate(catalog=store, consent=store, features=store, plays=store, ledger=ledger,
                       transactions=store, blobs=Path(home) / "blobs", limits=AudioLimits(),
                       claims=SqlClaims(store), group_commit=group)  # fmt: skip
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def play(t: int) -> None:
        listener = f"listener:{worker:02d}{t:03d}"
        i = worker * 7919 + t * 104_729
        while time.time() < stop_at.value:
            asked = time.perf_counter()
            gate.request(actor=listener, purpose=STREAM, tracks=[TrackId(f"trk_play_{i % PLAY_TRACKS:06d}")])
            latencies[t].append(time.perf_counter() - asked)
            counts[t] += 1
            i += 1

    ready.put(worker)
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=play, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    waits = sorted(x for per in latencies for x in per)

    def p(q: float) -> float:
        return waits[min(len(waits) - 1, int(q * len(waits)))] if waits else 0.0

    out.put(("append", began, time.perf_counter(), time.process_time() - cpu, sum(counts), sum(counts),
             p(0.5), p(0.99)))  # fmt: skip


def _plays_through_gate(
    url: str, home: Path, *, workers: int, threads: int, group: int, seconds: float, interval_s: float
) -> dict[str, Any]:
    """Plays/s through the real gate with ``workers`` processes of ``threads`` threads, beside one integrator."""
    from consentune.storage import make_engine

    _play_catalogue(url)
    players, integrator, start, done, out, stop_at = _beside_integrator(
        url, home, workers, interval_s, _play_worker, (threads, group)
    )
    engine = make_engine(url)
    _depth0, size0 = _queue_depth(engine)
    stop_at.value = time.time() + seconds
    start.set()
    results = [out.get(timeout=3600) for _ in players]
    done.set()
    integration = out.get(timeout=3600)
    for process in [*players, integrator]:
        process.join()
    _depth, size = _queue_depth(engine)
    with engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT count(*) FROM ledger_batches")).scalar_one()
    engine.dispose()
    window = max(r[2] for r in results) - min(r[1] for r in results)
    plays = sum(r[4] for r in results)
    return {
        "workers": workers,
        "threads": threads,
        "group_commit": group,
        "seconds": window,
        "plays": plays,
        "plays_per_s": plays / window,
        "latency_p50_ms": 1000 * max(r[6] for r in results),
        "latency_p99_ms": 1000 * max(r[7] for r in results),
        "player_cpu_s": sum(r[3] for r in results),
        "cpu_ms_per_play": 1000 * sum(r[3] for r in results) / max(plays, 1),
        "integrator_cpu_s": integration[3],
        "integrated_entries": size - size0,
        "ledger_rows_total": int(rows),
    }


def _memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB; unlike ru_maxrss, not inherited across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _audit_child(url: str, home: str, out: Any) -> None:
    from consentune.ledger.audit import audit_incremental

    store, ledger = _ledger(url, Path(home))
    baseline = _memory_mb("VmRSS")
    began, cpu = time.perf_counter(), time.process_time()
    report = audit_incremental(store, ledger.verifier_key, tiles=ledger.tiles)
    out.put(
        {
            "seconds": time.perf_counter() - began,
            "cpu_s": time.process_time() - cpu,
            "entries": report.entries_checked,
            "ok": report.ok,
            "problems": report.problems[:3],
            "baseline_rss_mb": baseline,
            "peak_rss_mb": _memory_mb("VmHWM"),
        }
    )


def _audit_in_child(url: str, home: Path) -> dict[str, Any]:
    context = mp.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_audit_child, args=(url, str(home), out))
    process.start()
    result: dict[str, Any] = out.get(timeout=3600)
    process.join()
    return result


def _bench_backend(
    url: str,
    home: Path,
    *,
    entries: int,
    batch: int,
    workers: list[int],
    sustained_s: float,
    sustained_batches: tuple[int, ...],
    interval_s: float,
    progress: Callable[[str], object],
    play_s: float = 0.0,
    play_threads: int = 16,
) -> dict[str, Any]:
    from consentune.storage import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    store, ledger = _ledger(url, home)
    ledger.integrate()
    result: dict[str, Any] = {"batch": batch}
    for count in workers:
        progress(f"  {count} worker(s) appending {entries:,} entries in batches of {batch:,}")
        result[f"appends_{count}w"] = _parallel_appends(url, home, count, entries, batch)
        single = max(200 * count, min(5_000, entries // 20))
        progress(f"  {count} worker(s) appending {single:,} single-record appends")
        result[f"single_appends_{count}w"] = _parallel_appends(url, home, count, single, 1)
    queued = store.queued_batches()
    before = ledger.integrated_size
    progress(f"  integrating the queue ({queued:,} batches)")
    began, cpu = time.perf_counter(), time.process_time()
    size = ledger.integrate()
    elapsed = time.perf_counter() - began
    result["integrate"] = {
        "entries": size - before,
        "seconds": elapsed,
        "per_s": (size - before) / elapsed,
        "cpu_s": time.process_time() - cpu,
    }
    for records in sustained_batches if sustained_s > 0 else ():
        for count in workers:
            progress(
                f"  sustained: {count} worker(s), gate-style appends of {records:,} record(s), {sustained_s:.0f} s"
            )
            got = _sustained(url, home, workers=count, batch=records, seconds=sustained_s, interval_s=interval_s)
            result[f"sustained_b{records}_{count}w"] = got
            progress(
                f"    {got['appends_per_s']:,.0f} appends/s, {got['per_s']:,.0f} entries/s appended, "
                f"{got['integrated_per_s_in_window']:,.0f}/s integrated, queue {got['queue_depth_start']:,} -> "
                f"max {got['queue_depth_max']:,} -> {got['queue_depth_end']:,}, "
                f"drained {got['drain_s_after_appends']:.1f} s"
            )
    for count in workers if play_s > 0 else ():
        for group in (1, GROUP_COMMIT):
            progress(f"  plays through the gate: {count} worker(s) x {play_threads} threads, group commit {group}")
            got = _plays_through_gate(
                url, home, workers=count, threads=play_threads, group=group, seconds=play_s, interval_s=interval_s
            )
            result[f"plays_g{group}_{count}w"] = got
            progress(
                f"    {got['plays_per_s']:,.0f} plays/s, p50 {got['latency_p50_ms']:.1f} ms, "
                f"p99 {got['latency_p99_ms']:.1f} ms, {got['cpu_ms_per_play']:.2f} CPU-ms per play"
            )
    progress("  first audit (sets the mark)")
    first = _audit_in_child(url, home)
    result["audit_all"] = first
    progress(f"  {entries:,} new entries, then the incremental audit")
    result["appends_for_audit"] = _parallel_appends(url, home, 1, entries, batch)
    ledger.integrate()
    result["audit_new"] = _audit_in_child(url, home)
    result["log_size"] = ledger.integrated_size
    store.engine.dispose()
    return result


@contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A private schema on the server at ``url``, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _receipt_pages(entries: int, per_page: int) -> tuple[list[bytes], str, int]:
    """A log in memory where ``entries`` of every 9 leaves' 8 are about one track; its paged receipt."""
    from consentune.ledger import Checkpoint, CompactRange, LogSigner, MemoryNodeSource, multiproof
    from consentune.ledger.checkpoint import b64encode
    from consentune.ledger.entry import fast_entry_bytes
    from consentune.ledger.merkle import leaf_hash

    signer = LogSigner.generate(_ORIGIN)
    source, compact = MemoryNodeSource(), CompactRange()
    stamp = "2026-12-01T00:00:00.000000Z"
    mine: list[dict[str, Any]] = []
    seq = 0
    while len(mine) < entries:
        track = "trk_other" if seq % 9 == 8 else "trk_popular"
        fields = ("service:stream", "stream", "stream", track, "allow", "listener played the track", 1)
        data = fast_entry_bytes(seq, stamp, *fields)
        source.add(compact.append(leaf_hash(data)))
        if track == "trk_popular":
            mine.append(json.loads(data))
        seq += 1
    note = signer.sign_checkpoint(Checkpoint(_ORIGIN, compact.size, compact.root()))
    pages, after = [], -1
    for start in range(0, len(mine), per_page):
        part = mine[start : start + per_page]
        proof = multiproof([e["sequence"] for e in part], compact.size, source)
        page = {
            "format": "consentune-receipt/v2",
            "subject": {"track": "trk_popular", "purpose": None},
            "checkpoint": note,
            "page": {"after": after, "next": part[-1]["sequence"] if start + per_page < len(mine) else None},
            "entries": part,
            "proof": [b64encode(h) for h in proof],
        }
        pages.append(json.dumps(page, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
        after = part[-1]["sequence"]
    return pages, signer.verifier_key(), compact.size


def _bench_receipt(entries: int, per_page: int) -> dict[str, Any]:
    from consentune.ledger import verify_receipt_pages

    pages, key, size = _receipt_pages(entries, per_page)
    began, cpu = time.perf_counter(), time.process_time()
    verified = verify_receipt_pages(pages, verifier_key=key)
    elapsed = time.perf_counter() - began
    return {
        "entries": verified.count,
        "pages": verified.pages,
        "log_size": size,
        "bytes": sum(len(p) for p in pages),
        "verify_s": elapsed,
        "verify_cpu_s": time.process_time() - cpu,
    }


def run_ledger(
    *,
    entries: int = 200_000,
    batch: int = 1_000,
    workers: tuple[int, ...] = (1, 2, 4),
    postgres_url: str | None = None,
    receipt_entries: int = 1_000_000,
    receipt_page: int = 100_000,
    sustained_s: float = 20.0,
    sustained_batches: tuple[int, ...] = (1, 100),
    integrate_interval_s: float = 1.0,
    play_s: float = 10.0,
    play_threads: int = 16,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Run the ledger benchmark on SQLite (and PostgreSQL if ``postgres_url``); return JSON-ready figures."""
    results: dict[str, Any] = {"entries": entries, "batch": batch, "workers": list(workers), "cpus": os.cpu_count()}
    results["load_average_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="consentune-bench-ledger-") as tmp:
        progress("SQLite")
        home = Path(tmp) / "sqlite"
        home.mkdir()
        results["sqlite"] = _bench_backend(
            f"sqlite:///{home / 'ledger.db'}",
            home,
            entries=entries,
            batch=batch,
            workers=list(workers),
            sustained_s=sustained_s,
            sustained_batches=sustained_batches,
            interval_s=integrate_interval_s,
            progress=progress,
            play_s=play_s,
            play_threads=play_threads,
        )
        if postgres_url:
            progress("PostgreSQL")
            home = Path(tmp) / "postgres"
            home.mkdir()
            with _postgres_schema(postgres_url) as url:
                results["postgresql"] = _bench_backend(
                    url,
                    home,
                    entries=entries,
                    batch=batch,
                    workers=list(workers),
                    sustained_s=sustained_s,
                    sustained_batches=sustained_batches,
                    interval_s=integrate_interval_s,
                    progress=progress,
                    play_s=play_s,
                    play_threads=play_threads,
                )
    if receipt_entries:
        progress(f"receipt: {receipt_entries:,} entries about one track, pages of {receipt_page:,}")
        results["receipt"] = _bench_receipt(receipt_entries, receipt_page)
    results["load_average_after"] = os.getloadavg()
    results["goals"] = GOALS
    return results


__all__ = ["GOALS", "run_ledger"]
