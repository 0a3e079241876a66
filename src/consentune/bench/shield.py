"""``consentune bench shield``: the scraping shield against simulated scrapers and listeners, over HTTP.

The real server runs on 127.0.0.1 with a simulated clock; bounded,
self-stopping clients drive it in simulated time (see
``consentune.bench.shieldsim``).  Goals from the shield issue: each scraper
strategy gets < 1 % of the catalogue's audio bytes; <= 0.1 % of legitimate
sessions meet a challenge, a block or a (non stream-ahead) rate limit;
p99 added shield latency < 2 ms.  Several seeds; the worst case is reported.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consentune.bench.shieldsim.catalogue import Catalogue, cached_catalogue
from consentune.bench.shieldsim.client import Budget, ByteRanges, GroupStats, ScopeAudio
from consentune.bench.shieldsim.engine import Loop
from consentune.bench.shieldsim.inprocess import InProcessServer
from consentune.bench.shieldsim.listeners import (
    DAY_S,
    ListenerAgent,
    Popularity,
    SessionRecord,
    legit_summary,
    make_users,
    make_visitors,
    visitor_summary,
)
from consentune.bench.shieldsim.newcomers import newcomer_need
from consentune.bench.shieldsim.scrapers import STRATEGIES, scraper_agents
from consentune.bench.shieldsim.server import Server, decision_names, established_at, free_port, server_env

GOALS = {"scraper_share_pct_below": 1.0, "legit_hindered_pct_at_most": 0.1, "shield_p99_ms_below": 2.0}
START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class ShieldBenchConfig:
    """Sizes and caps.  ``tracks``: 2,000 makes 1 % = 20 tracks (~1.2 h of audio); see docs/shield-bench.md."""

    tracks: int = 2000
    base_pieces: int = 12
    sessions: int = 100
    visitor_sessions: int = 30  # anonymous visitors per seed, reported apart
    anonymous_audio: str = "none"  # the server's policy for listeners without an account
    days: float = 2.0
    seeds: int = 3
    first_seed: int = 1
    strategies: tuple[str, ...] = tuple(s.name for s in STRATEGIES)
    max_minutes: float = 19.0
    max_requests_per_seed: int = 400_000
    max_requests_per_client: int = 60_000
    newcomer_budget: str | None = None  # the server's CONSENTUNE_NEWCOMER_BUDGET (None: its default)
    peer_budget_off: bool = False  # also run every seed with the newcomer budgets off (a peer, same catalogue)
    # marked streams are 16-bit WAV (~9x the bytes of the MP3 originals) and cost the server CPU per request;
    # the shield's decisions never depend on the mark, so the long runs serve the originals (docs/shield-bench.md)
    watermark: bool = True
    # call the server's app in this process instead of over HTTP to a subprocess (same app and settings)
    in_process: bool = False
    catalogue_cache: Path | None = None  # reuse the catalogue built by an earlier run with the same sizes
    restart_after_h: float | None = 33.0  # restart the server once (a deploy) after this many simulated hours


QUICK = ShieldBenchConfig(tracks=600, sessions=40, visitor_sessions=12, days=0.5, seeds=2, max_minutes=5.0)


def run_shield(config: ShieldBenchConfig, *, progress: Callable[[str], object] = lambda _m: None) -> dict[str, Any]:
    """Build the catalogue once, then one simulation per seed on a fresh copy of it; JSON-ready figures."""
    if config.anonymous_audio not in ("none", "preview", "full"):
        raise ValueError(f"anonymous_audio {config.anonymous_audio!r}: use none, preview or full")
    unknown = set(config.strategies) - {s.name for s in STRATEGIES}
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; known: {[s.name for s in STRATEGIES]}")
    deadline = time.monotonic() + config.max_minutes * 60
    with tempfile.TemporaryDirectory(prefix="consentune-shield-") as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        catalogue = cached_catalogue(template, cache=config.catalogue_cache, tracks=config.tracks,
                                     base_pieces=config.base_pieces, watermark=config.watermark,
                                     progress=progress)  # fmt: skip
        progress(f"catalogue: {len(catalogue.tracks):,} tracks, {catalogue.total_bytes / 2**20:,.0f} MiB, "
                 f"{catalogue.total_audio_s / 3600:,.0f} h of audio in {catalogue.build_s:.0f} s")  # fmt: skip
        seeds: list[dict[str, Any]] = []
        peer_seeds: list[dict[str, Any]] = []
        peers = int(config.peer_budget_off)
        for i in range(config.seeds):
            seed = config.first_seed + i
            remaining = max(30.0, (deadline - time.monotonic()) / (config.seeds - i))
            home = Path(tmp) / f"seed-{seed}"
            shutil.copytree(template, home)
            progress(f"seed {seed}: simulating {config.days:g} days (wall cap {remaining / 60:.1f} min)")
            if config.peer_budget_off:  # the same seed without newcomer budgets, on a fresh copy
                shutil.copytree(template, home.with_name(f"{home.name}-off"))
            seeds.append(run_seed(config, catalogue, home=home, seed=seed, wall_s=remaining / (1 + peers)))
            shutil.rmtree(home, ignore_errors=True)
            if config.peer_budget_off:
                off = replace(config, newcomer_budget="off")
                peer = run_seed(off, catalogue, home=home.with_name(f"{home.name}-off"), seed=seed,
                                wall_s=remaining / 2)  # fmt: skip
                peer_seeds.append({**peer, "newcomer_budget": "off"})
                shutil.rmtree(home.with_name(f"{home.name}-off"), ignore_errors=True)
    return {**summarize(config, catalogue, seeds), "peer_seeds_budget_off": peer_seeds}


def run_seed(
    config: ShieldBenchConfig, catalogue: Catalogue, *, home: Path, seed: int, wall_s: float
) -> dict[str, Any]:
    """One simulation: listeners and every chosen scraper strategy at once against one fresh server."""
    rng = random.Random(seed)
    end = START + config.days * DAY_S
    started, cpu_started = time.monotonic(), time.process_time()
    sizes = {t.id: t.size_bytes for t in catalogue.tracks}
    durations = {t.id: t.duration_s for t in catalogue.tracks}
    budget = Budget(config.max_requests_per_seed, config.max_requests_per_client, started + wall_s, sizes=sizes)
    legit = GroupStats("legit")
    groups = {name: GroupStats(name) for name in config.strategies}
    records: list[SessionRecord] = []
    popularity = Popularity(len(catalogue.tracks), random.Random(seed * 7919))
    users = make_users(rng, sessions=config.sessions, start=START, days=config.days, popularity=popularity)
    visitors = make_visitors(random.Random(seed * 31), sessions=config.visitor_sessions, start=START, days=config.days)
    visits: list[SessionRecord] = []
    newcomer_audio = ScopeAudio()
    env = server_env(home, anonymous_audio=config.anonymous_audio, newcomer_budget=config.newcomer_budget,
                     watermark=config.watermark)  # fmt: skip
    server: Server | InProcessServer
    if config.in_process:
        server = InProcessServer(env, home=home, port=free_port())
    else:
        server = Server(home, anonymous_audio=config.anonymous_audio, newcomer_budget=config.newcomer_budget,
                        watermark=config.watermark)  # fmt: skip
    with server:
        base_url = server.url
        loop = Loop(end)
        if config.restart_after_h is not None:  # a deploy: every listener comes back to a fresh process
            loop.add(_restart(server, at=START + config.restart_after_h * 3600, budget=budget))
        for user in users:
            agent = ListenerAgent(user, base_url=base_url, group=legit, budget=budget, catalogue=catalogue,
                                  popularity=popularity, records=records, seed=rng.randrange(2**32),
                                  newcomer_audio=newcomer_audio)  # fmt: skip
            loop.add(agent.run())
        for i, visitor in enumerate(visitors):
            agent = ListenerAgent(visitor, base_url=base_url, group=legit, budget=budget, catalogue=catalogue,
                                  popularity=popularity, records=visits, seed=seed * 7 + i)  # fmt: skip
            loop.add(agent.run())
        for strategy in STRATEGIES:
            if strategy.name in groups:
                first = START + rng.uniform(0, 2 * 3600)
                for agent_gen in scraper_agents(strategy, base_url=base_url, group=groups[strategy.name],
                                                budget=budget, catalogue=catalogue, start=first, end=end,
                                                rng=random.Random(rng.randrange(2**32))):  # fmt: skip
                    loop.add(agent_gen)
        loop.run()
    wall = time.monotonic() - started
    client_cpu = time.process_time() - cpu_started
    _name_decisions(decision_names(home), [legit, *groups.values()], [*records, *visits])
    served = newcomer_served(newcomer_audio, sizes=sizes, durations=durations)
    established = established_at(home)
    for r in records:  # history: the account was established (stored) before the session began
        r.history = r.account_id is not None and established.get(r.account_id, float("inf")) < r.start
    all_groups = [legit, *groups.values()]
    shield_ms = [x for g in all_groups for x in g.shield_ms]
    rtt_ms = [x for g in all_groups for x in g.rtt_ms]
    return {
        "seed": seed,
        "wall_s": wall,
        "cpu_s": {"server": server.cpu_s, "harness": client_cpu},
        "requests": budget.total_requests,
        "requests_per_s": budget.total_requests / max(wall, 1e-9),
        "stopped_by_cap": budget.exhausted or None,
        # a cap stops every agent at its next request, while sleeping agents still advance ``reached``:
        # the time the first cap fired is how far the simulation really got
        "simulated_h_reached": ((loop.capped_at if budget.exhausted and loop.capped_at else loop.reached) - START)
        / 3600,
        "agents_capped": len(loop.stopped_by_cap),
        "strategies": {g.name: _with_slowed(strategy_summary(g, catalogue, START), served) for g in groups.values()},
        "newcomer_need": newcomer_need(users, start=START),
        "newcomer_served": served,
        "restarts": server.restarts,
        "legit": {
            **legit_summary(records),
            "requests": legit.requests,
            "shield_ms": percentiles(legit.shield_ms),
            "rtt_ms": percentiles(legit.rtt_ms),
        },
        "visitors": visitor_summary(visits),
        "latency": {"shield_ms": percentiles(shield_ms), "rtt_ms": percentiles(rtt_ms), "requests": len(shield_ms)},
    }


def _restart(server: Server | InProcessServer, *, at: float, budget: Budget) -> Generator[float, float, None]:
    yield at
    if not budget.exhausted:  # after a cap the loop only drains sleeping agents: a restart would be wasted
        server.restart()


def newcomer_served(audio: ScopeAudio, *, sizes: dict[str, int], durations: dict[str, float]) -> dict[str, Any]:
    """Real newcomers' distinct audio hours per identity-day and per /24-day, as the server served them."""

    def hours(ranges: ByteRanges) -> float:
        return sum(ranges.of(t) / sizes[t] * durations[t] for t in ranges.tracks()) / 3600

    per_identity = sorted(hours(r) for r in audio.identity_days.values())
    per_prefix = sorted(hours(r) for r in audio.prefix_days.values())
    return {
        "identity_day_h": {"median": statistics.median(per_identity) if per_identity else 0.0,
                           "max": per_identity[-1] if per_identity else 0.0, "n": len(per_identity)},
        "prefix_day_h": {"median": statistics.median(per_prefix) if per_prefix else 0.0,
                         "max": per_prefix[-1] if per_prefix else 0.0, "n": len(per_prefix)},
    }  # fmt: skip


def _name_decisions(names: dict[str, str], groups: list[GroupStats], records: list[SessionRecord]) -> None:
    """Replace decision references (``#id``) in every tally with the signals behind them."""
    for g in groups:
        renamed: Counter[str] = Counter()
        for key, n in g.reasons.items():
            renamed[names.get(key, key)] += n
        g.reasons = renamed
    for r in records:
        r.reasons = [names.get(k, k) for k in r.reasons]


def strategy_summary(g: GroupStats, catalogue: Catalogue, start: float) -> dict[str, Any]:
    sizes = {t.id: t.size_bytes for t in catalogue.tracks}
    durations = {t.id: t.duration_s for t in catalogue.tracks}
    obtained = {t: g.ranges.of(t) for t in g.ranges.tracks()}
    total = sum(obtained.values())
    return {
        "bytes": total,
        "share_pct": 100.0 * total / catalogue.total_bytes,
        "tracks_touched": sum(1 for n in obtained.values() if n > 0),
        "tracks_complete": sum(1 for t, n in obtained.items() if n >= sizes[t]),
        "audio_h": sum(n / sizes[t] * durations[t] for t, n in obtained.items()) / 3600,
        "first_challenge_h": _hours(g.first_challenge_at, start),
        "first_block_h": _hours(g.first_block_at, start),
        "challenges": g.challenges,
        "solved": g.solved,
        "blocks": g.blocks,
        "plays": g.plays,
        "sessions": g.sessions,
        "accounts": g.accounts,
        "requests": g.requests,
        "throttled_other": g.throttled_other,
        "stopped_by": dict(g.reasons.most_common(4)),
        # identity cost: distinct audio per identity that got audio on a day, and per /24 on a day
        "identity_days": len(g.identity_days),
        "prefix_days": len(g.prefix_days),
        "audio_h_per_identity_day": sum(n / sizes[t] * durations[t] for t, n in obtained.items())
        / 3600
        / max(1, len(g.identity_days)),
        "audio_h_per_prefix_day": sum(n / sizes[t] * durations[t] for t, n in obtained.items())
        / 3600
        / max(1, len(g.prefix_days)),
        "newcomer_limited": g.newcomer_limited,
        "goal_met": 100.0 * total / catalogue.total_bytes < GOALS["scraper_share_pct_below"],
    }


def _with_slowed(summary: dict[str, Any], served: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "slowed_goal_met": judge_slowed(summary, served)}


def judge_slowed(strategy: dict[str, Any], served: dict[str, Any]) -> bool:
    """The goal for strategies that can only be slowed: per identity-day and per /24-day at most what a real
    newcomer got in the same run (medians)."""
    return bool(
        strategy["audio_h_per_identity_day"] <= served["identity_day_h"]["median"]
        and strategy["audio_h_per_prefix_day"] <= served["prefix_day_h"]["median"]
    )


def _hours(at: float | None, start: float) -> float | None:
    return None if at is None else round((at - start) / 3600, 2)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1], "n": len(ordered)}


def summarize(config: ShieldBenchConfig, catalogue: Catalogue, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed figures plus the worst case of each measure against the goals."""
    worst_share = {name: max(s["strategies"][name]["share_pct"] for s in seeds) for name in config.strategies}
    sessions = sum(s["legit"]["sessions"] for s in seeds)
    hindered = sum(s["legit"]["hindered"] for s in seeds)
    worst_hindered = max(s["legit"]["hindered_pct"] for s in seeds)
    worst_p99 = max(s["latency"]["shield_ms"]["p99"] for s in seeds)
    slowed = {n: all(s["strategies"][n].get("slowed_goal_met", False) for s in seeds) for n in config.strategies}
    worst_plays = max(s["legit"].get("hindered_plays_pct", 0.0) for s in seeds)
    with_history = sum(s["legit"].get("hindered_with_history", 0) for s in seeds)
    goals = {
        **{f"scraper {n} share < 1% or slowed to a newcomer's median": {
            "worst": v, "met": v < GOALS["scraper_share_pct_below"] or slowed[n], "slowed": slowed[n],
            "ratio": v / GOALS["scraper_share_pct_below"]}
           for n, v in worst_share.items()},
        "legit plays hindered <= 0.1%": {"worst": worst_plays, "met": worst_plays <= 0.1, "ratio": worst_plays / 0.1},
        "no hindered listener with history": {"worst": with_history, "met": with_history == 0,
                                              "ratio": float(with_history)},
        "legit hindered <= 0.1%": {"worst": worst_hindered, "pooled": 100.0 * hindered / max(1, sessions),
                                   "met": worst_hindered <= GOALS["legit_hindered_pct_at_most"],
                                   "ratio": worst_hindered / GOALS["legit_hindered_pct_at_most"]},
        "shield p99 < 2 ms": {"worst": worst_p99, "met": worst_p99 < GOALS["shield_p99_ms_below"],
                              "ratio": worst_p99 / GOALS["shield_p99_ms_below"]},
    }  # fmt: skip
    return {
        "config": {
            **asdict(config),
            "catalogue_cache": str(config.catalogue_cache or ""),
            "start": datetime.fromtimestamp(START, UTC).isoformat(),
        },
        "catalogue": {
            "tracks": len(catalogue.tracks),
            "bytes": catalogue.total_bytes,
            "audio_h": catalogue.total_audio_s / 3600,
            "build_s": catalogue.build_s,
            "one_percent_tracks": len(catalogue.tracks) / 100,
        },
        "strategies": {s.name: s.description for s in STRATEGIES if s.name in config.strategies},
        "seeds": seeds,
        "legit_pooled": {"sessions": sessions, "hindered": hindered},
        "goals": goals,
        "all_goals_met": all(g["met"] for g in goals.values()),
    }


def with_overrides(base: ShieldBenchConfig, **overrides: Any) -> ShieldBenchConfig:
    """``base`` with every override that is not None."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["GOALS", "QUICK", "START", "ShieldBenchConfig", "run_seed", "run_shield", "summarize", "with_overrides"]
