"""``consentune bench core``: print a table, write JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from consentune.cli.common import console

bench_app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)

_UNITS = {"_per_s": "/s", "_ms_median": "ms (median)", "_s": "s"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@bench_app.command("core")
def core(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/core.json"),
    entries: Annotated[int, typer.Option(help="ledger size to build")] = 1_000_000,
    decisions: Annotated[int, typer.Option(help="consent decisions per batch")] = 1_000_000,
    database_url: Annotated[str | None, typer.Option(help="benchmark this database instead of a temp SQLite")] = None,
) -> None:
    """Ledger appends/s, proof times at full size, consent decisions/s, ingest throughput."""
    from consentune.bench.core import run_core

    results = run_core(
        ledger_entries=entries,
        decisions=decisions,
        database_url=database_url,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = Table("measure", "value", title=f"consentune bench core ({results['backend']})")
    for key, value in results.items():
        if key not in ("targets", "meets_targets", "machine"):
            table.add_row(key, _fmt(value))
    for key, target in results["targets"].items():
        ok = results["meets_targets"][key]
        table.add_row(
            f"target {key}",
            f"{target:,} -> {'met' if ok else 'MISSED'} ({results[key] / target:.2f}x)",
        )
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("recommend")
def recommend(
    data: Annotated[
        Path | None, typer.Option(help="Last.fm 2K directory (or CONSENTUNE_LASTFM_DIR)", show_default=False)
    ] = None,
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/recommend.json"),
    seeds: Annotated[str, typer.Option(help="comma-separated seeds; peers run on the first")] = "42,43,44",
) -> None:
    """Recall/NDCG, long-tail exposure frontier, cold start and fold-in latency against peers."""
    from consentune.bench.recommend import run_recommend

    results = run_recommend(data=data, seeds=[int(s) for s in seeds.split(",") if s.strip()], progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    main = results["seeds"][str(results["main_seed"])]
    columns = ("recall_at_10", "ndcg_at_10", "coverage_at_10", "long_tail_share_at_10", "long_tail_recall_at_10")
    table = Table(
        "model",
        "params",
        "Recall@10",
        "NDCG@10",
        "cov@10",
        "LT share",
        "LT recall",
        "Gini",
        "train s",
        title=f"consentune bench recommend (seed {results['main_seed']}, {main['users']:,} users, "
        f"{main['items']:,} artists)",
    )
    for name, row in main["models"].items():
        train_s = _fmt(row["train_s"]) if "train_s" in row else "-"
        table.add_row(name, row["params"], *(f"{row[c]:.4f}" for c in columns), f"{row['exposure_gini']:.3f}", train_s)
    console.print(table)
    frontier = Table(
        "LT target",
        "damping",
        "bonus",
        "Recall@10",
        "NDCG@10",
        "cov@10",
        "LT share",
        "LT recall",
        "Gini",
        title="accuracy/exposure frontier (two-stage model: long-tail slot target × popularity damping, test split)",
    )
    for row in main["frontier"]:
        picked = (row["target"], row["damping"]) == (main["chosen_target"], main["chosen_damping"])
        frontier.add_row(
            f"{row['target']}{' (chosen on inner)' if picked else ''}",
            f"{row['damping']}",
            f"{row['bonus']:.4f}",
            *(f"{row[c]:.4f}" for c in columns),
            f"{row['exposure_gini']:.3f}",
        )
    console.print(frontier)
    rerank = Table(
        "λ",
        "Recall@10",
        "NDCG@10",
        "cov@10",
        "LT share",
        "LT recall",
        "Gini",
        title="for comparison: score re-rank of iALS-BM25 alone (bonus λ on per-user [0, 1] scores)",
    )
    for row in main["score_rerank_frontier"]:
        rerank.add_row(f"{row['strength']}", *(f"{row[c]:.4f}" for c in columns), f"{row['exposure_gini']:.3f}")
    console.print(rerank)
    cold = main["coldstart"]
    other = Table("measure", "value", title="cold start and serving")
    other.add_row("cold artists held out", f"{cold['cold_items']:,}")
    other.add_row(f"content model Recall@10 ({cold['params']})", f"{cold['content_recall_at_10']:.4f}")
    other.add_row("popularity-within-tag Recall@10", f"{cold['tag_popularity_recall_at_10']:.4f}")
    other.add_row("ratio", f"{cold['ratio']:.2f}x")
    other.add_row("retrain s (members refit, stage kept)", f"{main['retrain_s']:.2f}")
    other.add_row("two-stage fit s (incl. learning the stage)", f"{main['two_stage_fit_s']:.2f}")
    for key in ("p50_ms", "p99_ms", "consent_violations"):
        other.add_row(f"serving {key} (fold-in + long-tail bonus + consent mask)", _fmt(main["serving"][key]))
    console.print(other)
    seeds_table = Table("measure (winning configuration)", "mean", "min", "max", "per seed", title="across seeds")
    for key, stats in results["across_seeds"].items():
        per_seed = ", ".join(f"{v:.4f}" for v in stats["values"])
        seeds_table.add_row(key, f"{stats['mean']:.4f}", f"{stats['min']:.4f}", f"{stats['max']:.4f}", per_seed)
    console.print(seeds_table)
    goals = Table("goal", "value", "target", "result", title="goals (main seed)")
    for name, goal in results["goals"].items():
        verdict = f"{'met' if goal['met'] else 'MISSED'} ({goal['ratio']:.2f}x)"
        goals.add_row(name, f"{goal['value']:.4f}", f"{goal['target']}", verdict)
    console.print(goals)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("shield")
def shield(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/shield.json"),
    quick: Annotated[bool, typer.Option("--quick", help="a small, fast configuration (~5 min)")] = False,
    tracks: Annotated[int | None, typer.Option(help="catalogue size (default 2000: 1% = 20 tracks)")] = None,
    sessions: Annotated[int | None, typer.Option(help="legitimate listener sessions per seed (default 100)")] = None,
    days: Annotated[float | None, typer.Option(help="simulated days (default 2)")] = None,
    seeds: Annotated[int | None, typer.Option(help="seeds to run; the worst case is reported (default 3)")] = None,
    first_seed: Annotated[int | None, typer.Option(help="first seed (default 1)")] = None,
    strategy: Annotated[list[str] | None, typer.Option(help="scraper strategy to run (repeat; default all)")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="wall-time cap for all seeds (default 19)")] = None,
    anonymous_audio: Annotated[
        str | None, typer.Option(help="server policy for listeners without an account: none|preview|full")
    ] = None,
    visitor_sessions: Annotated[int | None, typer.Option(help="anonymous visitor sessions per seed")] = None,
) -> None:
    """Real server on 127.0.0.1 vs simulated scrapers and listeners: bytes scraped, listeners hindered, latency."""
    from rich.console import Console

    from consentune.bench.shield import QUICK, ShieldBenchConfig, run_shield, with_overrides
    from consentune.bench.shieldsim.report import tables

    config = with_overrides(
        QUICK if quick else ShieldBenchConfig(),
        tracks=tracks,
        sessions=sessions,
        days=days,
        seeds=seeds,
        first_seed=first_seed,
        strategies=tuple(strategy) if strategy else None,
        max_minutes=max_minutes,
        anonymous_audio=anonymous_audio,
        visitor_sessions=visitor_sessions,
    )
    results = run_shield(config, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    wide = Console(width=max(console.width, 200))  # the scraper table has 14 columns
    for table in tables(results):
        wide.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("organize")
def organize(
    quick: Annotated[bool, typer.Option("--quick", help="fewer pieces and queries (about a minute)")] = False,
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/organize.json"),
    seed: Annotated[int, typer.Option(help="seed for the rendered pieces and vectors")] = 7,
    soundfont: Annotated[Path | None, typer.Option(help="General MIDI .sf2 (default: Debian's)")] = None,
    tags_data: Annotated[
        Path | None, typer.Option(help="Last.fm 2K directory for tag normalization (or CONSENTUNE_LASTFM_DIR)")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="music corpus manifest.tsv (make-music-corpus.sh) for the duplicates bench")
    ] = None,
) -> None:
    """Tags (Last.fm), tempo/key/instrument (rendered MIDI), cost per track, similar p95, duplicates."""
    from consentune.bench.organize import run_organize

    results = run_organize(
        quick=quick, seed=seed, soundfont=soundfont, tags_data=tags_data, manifest=manifest, progress=console.print
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = Table("measure", "value", "target", title="consentune bench organize")
    skip = ("targets", "meets_targets", "machine", "rows", "tag_coverage_by_method", "tag_coverage_by_facet")
    shown = {k: v for k, v in results.items() if k not in skip}
    for key, value in shown.items():
        table.add_row(key, _fmt(value), "")
    for key, target in results["targets"].items():
        table.add_row(f"target {key}", "met" if results["meets_targets"][key] else "MISSED", _fmt(target))
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    console.print(f"wrote {out}")


@bench_app.command("fraud")
def fraud(
    lastfm: Annotated[Path | None, typer.Option(help="Last.fm 2K user_artists.dat (research use; not copied)")] = None,
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/fraud.json"),
    quick: Annotated[bool, typer.Option("--quick", help="200x30 d0.5 x every camouflage + spreading, 1 seed")] = False,
    full: Annotated[bool, typer.Option("--full", help="the whole grid (hours on 2 cores)")] = False,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "1,2,3",
    sim_events: Annotated[int, typer.Option(help="organic events in the simulated background")] = 1_000_000,
) -> None:
    """Streaming detector vs FRAUDAR on the same injected attacks: P/R/F1 in the top 5, FPR, latency, events/s."""
    from consentune.bench.fraud import run_fraud

    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    if quick:
        seed_list = seed_list[:1]
    results = run_fraud(
        lastfm=lastfm, quick=quick, full=full, seeds=seed_list, sim_events=sim_events, progress=console.print
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = Table(
        "background", "seed", "attack", "camo", "ours user P/R/F1", "ours track F1", "ours fan FPR",
        "latency h", "ev/s", "FRAUDAR user F1 (best/union)", "FRAUDAR track F1", "FRAUDAR fan FPR",
        title="consentune bench fraud (top-5 alerts vs FRAUDAR top-5 blocks)",
    )  # fmt: skip
    for row in results["cells"]:
        o, f = row["ours"], row["fraudar"]
        u = o["user"]
        latency = "-" if o["latency_h"] is None else f"{o['latency_h']:.2f}"
        table.add_row(
            row["background"], str(row["seed"]), f"{row['bots']}x{row['targets']} d{row['density']}",
            row["camouflage"], f"{u['precision']:.2f}/{u['recall']:.2f}/{u['f1']:.2f}", f"{o['track']['f1']:.2f}",
            f"{o['fan_fpr']:.4f}", latency, f"{o['events_per_s']:,.0f}",
            f"{f['user_best_block']['f1']:.2f}/{f['user']['f1']:.2f}", f"{f['track_best_block']['f1']:.2f}",
            f"{f['fan_fpr']:.4f}",
        )  # fmt: skip
    console.print(table)
    _print_fraud_goals(results["goals"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True, default=float))
    console.print(f"wrote {out}")


def _print_fraud_goals(goals: dict[str, Any]) -> None:
    table = Table("goal (worst cell)", "target", "Consentune", "FRAUDAR", "result", title="fraud goals")
    for name, goal in goals.items():
        ours = goal.get("ours_min", goal.get("ours_max"))
        peer = goal.get("fraudar_best_block_min", goal.get("fraudar_union_max", "-"))
        table.add_row(
            name,
            _fmt(goal["target"]),
            "-" if ours is None else _fmt(float(ours)),
            peer if isinstance(peer, str) else _fmt(float(peer)),
            "met" if goal["met"] else "MISSED",
        )
    console.print(table)


@bench_app.command("identify")
def identify(
    manifest: Annotated[
        Path, typer.Option(help="TSV manifest of audio files (columns: path[, group, package, duration_s])")
    ],
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/identify.json"),
    quick: Annotated[
        bool, typer.Option("--quick", help="30 indexed tracks, 30 excerpts per condition (~5 min)")
    ] = False,
    seed: Annotated[int, typer.Option(help="protocol seed (the threshold was fixed on seed 7)")] = 2026,
    group: Annotated[str | None, typer.Option(help="only manifest rows of this group")] = None,
    peer: Annotated[bool, typer.Option(help="run audfprint when installed (pip install 'consentune[bench]')")] = True,
) -> None:
    """Top-1 accuracy per condition and length, false matches, CPU, index size, 10x index; audfprint beside."""
    from consentune.bench.identify import GOALS, QUOTED_AUDFPRINT, run_identify

    results = run_identify(manifest=manifest, quick=quick, seed=seed, group=group, peer=peer, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    measured = results["peer"].startswith("audfprint2")
    runs = results["runs"]
    table = Table(
        "condition", "ours 10 s", "peer 10 s", "goal 10 s", "ours 5 s", "peer 5 s", "goal 5 s",
        title=f"consentune bench identify: top-1 % (seed {results['seed']}, {results['indexed_tracks']} indexed, "
        f"{results['queries_per_condition']} excerpts/condition; peer: {results['peer']})",
    )  # fmt: skip
    for condition in [*GOALS, "negative"]:
        cells = []
        for label, column in (("10s", 0), ("5s", 1)):
            row = runs[label]["conditions"][condition]
            quoted = QUOTED_AUDFPRINT.get("false_match" if condition == "negative" else condition)
            peer_cell = f"{row['peer_pct']:.1f}" if measured else (f"{quoted[column]:g} (quoted)" if quoted else "-")
            goal = "<=0.5" if condition == "negative" else f">={GOALS[condition][column]:g}"
            cells += [f"{row['ours_pct']:.1f}", peer_cell, goal]
        table.add_row("false matches (negatives)" if condition == "negative" else condition, *cells)
    console.print(table)
    cost = Table("measure", "ours", "peer", title="cost")
    peer_build = results.get("peer_build") or {}
    cost.add_row(
        "query CPU s (10 s excerpt, decode incl.)",
        f"{runs['10s']['query_cpu_s_mean']:.4f}",
        _fmt(runs["10s"]["peer_query_cpu_s_mean"]) if measured else "0.10 (quoted)",
    )
    cost.add_row("query CPU s (5 s excerpt, decode incl.)", f"{runs['5s']['query_cpu_s_mean']:.4f}",
                 _fmt(runs["5s"]["peer_query_cpu_s_mean"]) if measured else "-")  # fmt: skip
    build = results["build"]
    cost.add_row("index build CPU-s per audio hour (decode incl.)", f"{build['cpu_s_per_audio_h']:.1f}",
                 _fmt(peer_build.get("cpu_s_per_audio_h", "-")))  # fmt: skip
    cost.add_row("  share of it spent decoding", f"{100 * build['decode_share']:.0f} %", "-")
    cost.add_row("index MB per audio hour", f"{build['index_mb_per_audio_h']:.3f}", "-")
    cost.add_row("hashes per second of audio", f"{build['hashes_per_s']:.1f}", "-")
    tenx = results["tenx"]
    cost.add_row(
        f"10x index ({tenx['tracks_10x']} tracks): accuracy 1x -> 10x",
        f"{tenx['accuracy_1x_pct']:.1f} -> {tenx['accuracy_10x_pct']:.1f}", "-",
    )  # fmt: skip
    cost.add_row(
        "10x index: false matches 1x -> 10x",
        f"{tenx['false_match_1x_pct']:.1f} -> {tenx['false_match_10x_pct']:.1f}",
        "-",
    )
    cost.add_row("10x index: match CPU ratio", f"{tenx['cpu_ratio']:.2f}x", "-")
    console.print(cost)
    goals = Table("goal", "value", "target", "result", title="goals")
    for name, goal in results["summary"].items():
        goals.add_row(name, _fmt(goal["value"]), goal["target"], "met" if goal["met"] else "MISSED")
    console.print(goals)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("watermark")
def watermark(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/watermark.json"),
    clips: Annotated[int, typer.Option(help="30-s clips per transformation")] = 8,
    seed: Annotated[int, typer.Option(help="seed for songs, payloads, crops and keys")] = 7,
) -> None:
    """Watermark recovery per transformation, false detections on unmarked audio, audibility."""
    from consentune.bench.watermark import run_watermark

    results = run_watermark(clips=clips, seed=seed, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = Table("measure", "value", title=f"consentune bench watermark ({clips} clips of 30 s)")
    for name, rate in results["recovery_rate"].items():
        table.add_row(f"recovered after {name}", f"{rate:.1%}")
    for key, value in results.items():
        if key not in ("recovery_rate", "machine"):
            table.add_row(key, _fmt(value) if not isinstance(value, float) or value >= 1e-3 else f"{value:.1e}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")
