"""``consentune bench ledger``: the sequencer at platform rate, on SQLite and PostgreSQL.

Measured per backend, in one run:

* appends/s with 1, 2 and 4 worker processes appending at once (batches of
  ``batch`` records per append, the way the gate logs a request) and single-record
  appends/s with the same workers (one play = one append);
* integration rate: queued entries integrated per second (indices, tree, head,
  checkpoint and tlog-tiles included);
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
from typing import Any

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
    url: str, home: Path, *, entries: int, batch: int, workers: list[int], progress: Callable[[str], object]
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
            progress=progress,
        )
        if postgres_url:
            progress("PostgreSQL")
            home = Path(tmp) / "postgres"
            home.mkdir()
            with _postgres_schema(postgres_url) as url:
                results["postgresql"] = _bench_backend(
                    url, home, entries=entries, batch=batch, workers=list(workers), progress=progress
                )
    if receipt_entries:
        progress(f"receipt: {receipt_entries:,} entries about one track, pages of {receipt_page:,}")
        results["receipt"] = _bench_receipt(receipt_entries, receipt_page)
    results["load_average_after"] = os.getloadavg()
    results["goals"] = GOALS
    return results


__all__ = ["GOALS", "run_ledger"]
