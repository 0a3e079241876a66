"""``consentune bench workers --shield``, part one: a scraper spread over W workers vs the same on one.

Each run builds W services over one database and one shield state (Redis
when a URL is given, else the SQLite state file) and one service with the
in-process default, then replays the same requests through both: for W
workers every request goes to a random one (a load balancer without
stickiness, the worst case for per-worker state).  Peers in the same run:

* ``one``: one worker, state in memory (the reference);
* ``shared``: W workers over the shared state (what this bench is about);
* ``private``: W workers each with its own in-memory state (the old way),
  to show what sharing buys.

Scrapers come from a family of strategies with seeded parameters; honest
listeners play favourites and report progress.  Figures: plays a scraper
started before its first block, listeners hindered, and the time each of
the listeners' guard checks took, wall and this process's CPU (the added
latency of shared state is ``shared - one``; on a loaded machine the wall
p99 is mostly waiting for a core).
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.shield.detect import AccessEvent

T0 = 1_780_000_000.0
CATALOGUE = 3000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
Progress = Callable[[str], object]


@dataclass(frozen=True)
class Scraper:
    name: str
    concurrency: int
    shuffled: bool
    progress: str  # none | fake
    sessions_every: int  # a new session id every n plays (0: one session)
    agent: str


def strategies(rng: random.Random) -> list[Scraper]:
    """The families, each with parameters drawn from wide ranges."""
    return [
        Scraper("parallel", rng.choice([2, 4, 8]), rng.random() < 0.5, "none", 0, "python-requests/2.32"),
        Scraper("rotating-sessions", rng.choice([2, 3, 4]), True, "none", rng.choice([5, 10, 20]), BROWSER),
        Scraper("fake-progress", rng.choice([3, 4, 6]), True, "fake", 0, BROWSER),
        Scraper("ai-crawler", 1, False, "none", 0, "Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)"),
    ]


def strategies_index(s: Scraper) -> int:
    return ["parallel", "rotating-sessions", "fake-progress", "ai-crawler"].index(s.name)


def _duration(index: int) -> float:
    return 120.0 + (index * 7919) % 240


def _play(who: tuple[str, str, str, str | None], start: float, index: int, listen_s: float, progress: str
          ) -> Iterator[AccessEvent]:  # fmt: skip
    session, address, agent, account = who
    dur, track = _duration(index), f"trk_{index}"

    def event(at: float, kind: str, **extra: Any) -> AccessEvent:
        return AccessEvent(at=at, kind=kind, session_id=session, address=address, user_agent=agent,
                           account_id=account, track_id=track, **extra)  # fmt: skip

    yield event(start, "play", catalog_index=index, duration_s=dur)
    fetched, t = 0.0, start
    while t <= start + listen_s:
        allowed = min(dur, t - start + 30.0)
        if allowed > fetched:
            yield event(
                t, "stream", nbytes=int((allowed - fetched) * 16000), duration_s=dur, track_bytes=int(dur * 16000)
            )
            fetched = allowed
        if t > start and progress != "none":
            position = t - start if progress == "honest" else (t - start) * 0.97
            yield event(t + 0.01, "progress", position_s=min(dur, position))
        t += 15.0


def scraper_events(s: Scraper, seed: int, plays: int) -> list[AccessEvent]:
    rng = random.Random(f"{s.name}-{seed}")
    order = list(range(CATALOGUE))
    if s.shuffled:
        rng.shuffle(order)
    address = f"198.{51 + strategies_index(s)}.{seed % 250}.{rng.randrange(1, 250)}"  # one network per scraper
    streams = []
    for n in range(plays):
        session = f"{s.name}-{seed}-{n // s.sessions_every if s.sessions_every else 0}"
        index = order[n]
        at = T0 + (n // s.concurrency) * (_duration(index) + 2.0) + (n % s.concurrency) * 0.5
        streams.append(list(_play((session, address, s.agent, None), at, index, _duration(index), s.progress)))
    return sorted((e for group in streams for e in group), key=lambda e: e.at)


def listener_events(seed: int, listeners: int, plays_each: int) -> list[AccessEvent]:
    rng = random.Random(seed + 10_000)
    events: list[AccessEvent] = []
    for n in range(listeners):
        favourites = [rng.randrange(CATALOGUE) for _ in range(15)]
        who = (f"listener-{seed}-{n}", f"203.0.{n % 4}.{n % 200 + 1}", BROWSER, f"acct-{seed}-{n}")
        t = T0 + rng.uniform(0, 3600)
        for _ in range(plays_each):
            index = rng.choice(favourites)
            listen = _duration(index) * rng.uniform(0.3, 1.0)
            events += _play(who, t, index, listen, "honest")
            t += listen + rng.uniform(1, 60)
    return events


def _open(root: Path, name: str, state: str, redis_url: str | None, prefix: str) -> Settings:
    return Settings(home=root / name, database_url=f"sqlite:///{root / f'{name}.db'}", identify_at_ingest=False,
                    shield_state=state, redis_url=redis_url if state == "redis" else None,
                    redis_prefix=prefix)  # fmt: skip


@dataclass
class Run:
    blocked_after_plays: dict[str, int | None]
    listeners_hindered: int
    check_ms: list[float]  # listeners' requests only: what shared state adds for the people it serves
    cpu_ms_per_check: float


def _drive(services: list[Consentune], events: list[AccessEvent], seed: int) -> tuple[list[str], list[float], float]:
    """Actions, wall ms per check, and this thread's CPU ms over all checks."""
    rng = random.Random(seed)
    actions, times = [], []
    cpu = time.thread_time()
    for event in events:
        guard = services[rng.randrange(len(services))].listen.guard
        started = time.perf_counter()
        actions.append(guard.check(event).action)
        times.append((time.perf_counter() - started) * 1000)
    return actions, times, (time.thread_time() - cpu) * 1000


def _run(services: list[Consentune], seed: int, plays: int, listeners: int) -> Run:
    rng = random.Random(seed)
    blocked: dict[str, int | None] = {}
    for s in strategies(rng):
        events = scraper_events(s, seed, plays)
        actions, _took, _cpu = _drive(services, events, seed)
        started = [n for n, (e, _a) in enumerate(zip(events, actions, strict=True)) if e.kind == "play"]
        first = next((i for i, a in enumerate(actions) if a == "block"), None)
        blocked[s.name] = None if first is None else sum(1 for i in started if i < first)
    honest = sorted(listener_events(seed, listeners, 8), key=lambda e: e.at)
    actions, took, cpu = _drive(services, honest, seed)
    hindered = {e.session_id for e, a in zip(honest, actions, strict=True) if a != "allow"}
    return Run(blocked, len(hindered), took, cpu / max(1, len(honest)))


def run_shared_shield(
    *, workers: int, seeds: int, plays: int = 60, listeners: int = 20, redis_url: str | None = None,
    progress: Progress = lambda _m: None,
) -> dict[str, Any]:  # fmt: skip
    """Catch figures and guard-check latency for ``one``, ``shared`` (W workers) and ``private`` (W workers)."""
    state = "redis" if redis_url else "file"
    out: dict[str, Any] = {"workers": workers, "state": state, "seeds": seeds, "plays": plays, "runs": {}}
    for seed in range(1, seeds + 1):
        root = Path(tempfile.mkdtemp(prefix="consentune-bench-sharedshield-"))
        prefix = f"consentune-bench:{seed}:{time.time_ns()}:"
        try:
            peers = {
                "one": [open_service(_open(root, "one", "memory", None, prefix))],
                "shared": [open_service(_open(root, "shared", state, redis_url, prefix)) for _ in range(workers)],
                "private": [open_service(_open(root, "private", "memory", None, prefix)) for _ in range(workers)],
            }
            try:
                for name, services in peers.items():
                    run = _run(services, seed, plays, listeners)
                    out["runs"].setdefault(name, []).append(
                        {
                            "seed": seed,
                            "blocked_after_plays": run.blocked_after_plays,
                            "listeners_hindered": run.listeners_hindered,
                            **_latency(run.check_ms),
                            "cpu_ms_per_check": round(run.cpu_ms_per_check, 3),
                        }
                    )
                    progress(f"seed {seed} {name}: {run.blocked_after_plays}, hindered {run.listeners_hindered}")
            finally:
                for services in peers.values():
                    for svc in services:
                        svc.close()
        finally:
            _drop_redis_keys(redis_url, prefix)
            shutil.rmtree(root, ignore_errors=True)
    one, shared = out["runs"]["one"], out["runs"]["shared"]
    out["same_as_one_worker"] = all(a["blocked_after_plays"] == b["blocked_after_plays"] and
                                    a["listeners_hindered"] == b["listeners_hindered"]
                                    for a, b in zip(one, shared, strict=True))  # fmt: skip
    columns = {"p50": "p50_ms", "p99": "p99_ms", "cpu_per_check": "cpu_ms_per_check"}
    median = statistics.median
    out["added_ms"] = {name: round(median(r[col] for r in shared) - median(r[col] for r in one), 3)
                       for name, col in columns.items()}  # fmt: skip
    return out


def _latency(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"checks": len(ms), "p50_ms": round(ms[len(ms) // 2], 3), "p99_ms": round(ms[int(len(ms) * 0.99)], 3)}


def _drop_redis_keys(url: str | None, prefix: str) -> None:
    if not url:
        return
    from consentune.sharedstate import connect

    client = connect(url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


__all__ = ["run_shared_shield", "scraper_events", "strategies"]
