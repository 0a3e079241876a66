"""``consentune bench scale``: every listener and dashboard request path at several catalogue sizes.

For each size a fresh database (a temporary SQLite file, or a private
PostgreSQL schema dropped afterwards) is filled by the benchmark's own loader
(:mod:`consentune.bench.scale_load`), then each path is timed in this
process and its peak memory (RSS high-water mark above the level before the
path ran) recorded.  Ratios compare each size with the smallest one; the
goals are each path at the largest size within 1.5x of the smallest, and the
p99 of catalogue pages and search at or under 50 ms.
"""

from __future__ import annotations

import csv
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from consentune.auth import Principal
from consentune.bench.scale_load import Loaded, load_catalogue, now_us
from consentune.config import Settings
from consentune.errors import InvalidInput
from consentune.service import Consentune, open_service
from consentune.types import Role, Track, TrackId
from consentune.web import views

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
P99_GOAL_MS = 50.0
GROWTH_GOAL = 1.5
TIMED_PATHS = ("catalog_page_p99_ms", "search_p99_ms", "track_policy_p99_ms", "operator_page_ms", "reach_page_ms")


def run_scale(
    *,
    sizes: list[int],
    backend: str = "sqlite",
    plays_per_track: float = 1.0,
    max_plays: int = 10_000_000,
    import_rows: int = 200_000,
    samples: int = 200,
    postgres_url: str = POSTGRES_URL,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Load each size, time every path; a JSON-ready dict with per-size figures and ratios."""
    if backend not in ("sqlite", "postgres"):
        raise InvalidInput(f"backend {backend!r} is not one the benchmark knows", hint="use sqlite or postgres")
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still drops its schema
    try:
        per_size = {
            str(size): _one_size(size, backend, min(max_plays, int(size * plays_per_track)), import_rows,
                                 samples, postgres_url, progress)
            for size in sorted(sizes)
        }  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    return {"backend": backend, "sizes": per_size, **_verdict(per_size)}


def _one_size(
    size: int,
    backend: str,
    plays: int,
    import_rows: int,
    samples: int,
    postgres_url: str,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    progress(f"size {size:,}: loading {size:,} tracks and {plays:,} plays ({backend})")
    with _database(backend, postgres_url) as url, tempfile.TemporaryDirectory(prefix="ctn-scale-") as tmp:
        svc = open_service(Settings(home=Path(tmp) / "home", database_url=url))
        try:
            started = time.perf_counter()
            loaded = load_catalogue(svc, tracks=size, plays=plays, progress=progress)
            figures: dict[str, Any] = {"load_s": time.perf_counter() - started, "plays": plays}
            figures.update(_measure(svc, loaded, samples=samples, progress=progress))
            if import_rows:
                figures.update(_import(svc, loaded, rows=import_rows, tmp=Path(tmp), progress=progress))
        finally:
            svc.close()
    return figures


@contextmanager
def _database(backend: str, postgres_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ctn-scale-db-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'scale.db'}"
        return
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _measure(svc: Consentune, loaded: Loaded, *, samples: int, progress: Callable[[str], object]) -> dict[str, Any]:
    rng = random.Random(11)
    out: dict[str, Any] = {}
    desk = svc.listen
    progress("  first catalogue page (a freshly started service, median of 5)")
    out["first_catalog_page_ms"], out["first_catalog_page_mb"] = _first_pages(svc)
    offsets = [rng.randrange(loaded.tracks) for _ in range(samples)]
    out["catalog_page_p50_ms"], out["catalog_page_p99_ms"], out["catalog_page_mb"] = _p99(
        lambda i: desk.catalog_page(offset=offsets[i], limit=50), samples
    )
    queries = _queries(loaded, rng, samples)
    out["search_p50_ms"], out["search_p99_ms"], out["search_mb"] = _p99(
        lambda i: desk.search(queries[i], limit=20), samples
    )
    out["search_hits_mean"] = statistics.fmean(len(desk.search(q, limit=20)) for q in queries[:50])
    progress("  robots.txt and TDMRep")
    base = "https://music.example"
    out["robots_ms"], out["robots_mb"] = _once(lambda: desk.policy.robots(base_url=base))
    out["robots_bytes"] = len(desk.policy.robots(base_url=base).value)
    out["tdmrep_ms"], _mb = _once(lambda: desk.policy.tdmrep_rendered(base_url=base))
    tracks = [_track(svc, rng.randrange(loaded.tracks)) for _ in range(samples)]
    out["track_policy_p50_ms"], out["track_policy_p99_ms"], out["track_policy_mb"] = _p99(
        lambda i: desk.policy_headers(tracks[i].id), samples
    )
    progress("  operator and reach pages")
    admin = Principal("bench", Role.ADMIN, None)
    out["operator_page_ms"], out["operator_page_mb"] = _median(lambda: views.operator_overview(svc, admin), 5)
    artist = svc.catalog.artist(loaded.big_artist)
    owner = Principal("bench", Role.ARTIST, artist.id)
    moment = datetime.fromtimestamp(now_us() / 1e6, UTC)
    out["reach_page_ms"], out["reach_page_mb"] = _median(lambda: views.reach(svc, owner, artist, now=moment), 5)
    out["reach_artist_tracks"] = min(loaded.tracks, 10_000)
    return out


def _first_pages(svc: Consentune, runs: int = 5) -> tuple[float, float]:
    """What a worker's first listener request costs: a new service on the same database, then page one."""
    times, peaks = [], []
    for _ in range(runs):
        fresh = open_service(svc.settings)
        try:
            elapsed, peak = _once(lambda: fresh.listen.catalog_page(offset=0, limit=50))  # noqa: B023
        finally:
            fresh.close()
        times.append(elapsed)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def _track(svc: Consentune, index: int) -> Track:
    return svc.catalog.track(TrackId(f"trk_{index:016x}"))


def _queries(loaded: Loaded, rng: random.Random, count: int) -> list[str]:
    """A mix of what people type: a common word's prefix, two words, a rarer word, an artist."""
    common, rare = loaded.words[:50], loaded.words[500:3000]
    makers = (
        lambda: rng.choice(common)[:3],
        lambda: f"{rng.choice(common)} {rng.choice(common)[:2]}",
        lambda: rng.choice(rare),
        lambda: rng.choice(loaded.artist_words[: max(1, loaded.artists)]),
    )
    return [makers[i % len(makers)]() for i in range(count)]


def _import(
    svc: Consentune, loaded: Loaded, *, rows: int, tmp: Path, progress: Callable[[str], object]
) -> dict[str, Any]:
    """``plays import`` of a generated CSV: rows/s and the memory it took."""
    path = tmp / "plays.csv"
    rng = random.Random(5)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "track_id", "played_at", "ms_played", "ip", "device_id", "user_agent", "country"])
        for n in range(rows):
            played = datetime.fromtimestamp(1_780_000_000 + n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            writer.writerow(
                [
                    f"u{rng.randrange(50_000)}",
                    f"trk_{rng.randrange(loaded.tracks):016x}",
                    played,
                    rng.randrange(300_000),
                    address,
                    f"dev{rng.randrange(10_000)}",
                    "Mozilla",
                    "FR",
                ]
            )
    progress(f"  plays import of {rows:,} CSV rows ({path.stat().st_size / 2**20:.0f} MB)")
    _reset_peak()
    before = _rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    report = svc.plays.import_file(path)
    seconds = time.perf_counter() - started
    return {
        "import_rows_per_s": report.imported / seconds,
        "import_rows_per_cpu_s": report.imported / max(time.process_time() - cpu, 1e-9),  # this process only
        "import_mb": max(0.0, _peak_mb() - before),
        "import_rejected": report.rejected,
    }


def _once(call: Callable[[], object]) -> tuple[float, float]:
    _reset_peak()
    before = _rss_mb()
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000, max(0.0, _peak_mb() - before)


def _median(call: Callable[[], object], runs: int) -> tuple[float, float]:
    results = [_once(call) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def _p99(call: Callable[[int], object], samples: int) -> tuple[float, float, float]:
    """(median ms, p99 ms, peak MB) over ``samples`` calls."""
    _reset_peak()
    before = _rss_mb()
    times = []
    for i in range(samples):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], max(0.0, _peak_mb() - before)


def _status(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    return _status("VmRSS:")


def _peak_mb() -> float:
    return _status("VmHWM:")


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the RSS high-water mark, so each path's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def _verdict(per_size: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sizes = sorted(per_size, key=int)
    smallest, largest = per_size[sizes[0]], per_size[sizes[-1]]
    ratios = {
        key: largest[key] / smallest[key]
        for key in smallest
        if key.endswith("_ms") and isinstance(smallest[key], float) and smallest[key] > 0
    }
    goals = {f"{key} growth <= {GROWTH_GOAL}x": ratios[key] <= GROWTH_GOAL for key in TIMED_PATHS if key in ratios}
    for key in ("catalog_page_p99_ms", "search_p99_ms"):
        goals[f"{key} <= {P99_GOAL_MS:.0f} ms at {int(sizes[-1]):,}"] = largest[key] <= P99_GOAL_MS
    goals["import_rows_per_s >= 100,000"] = all(per_size[s].get("import_rows_per_s", 0) >= 100_000 for s in sizes)
    return {"growth_vs_smallest": ratios, "goals": goals}


__all__ = ["run_scale"]
