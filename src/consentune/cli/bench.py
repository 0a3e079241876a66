"""``consentune bench core``: print a table, write JSON."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from consentune.cli.common import console, new_table

bench_app = typer.Typer(help="Benchmarks: print a table and write JSON.")

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
    """Ledger appends/s, proof times at full size, consent decisions/s, ingest throughput, CLI start-up CPU-s."""
    from consentune.bench.core import run_core

    results = run_core(
        ledger_entries=entries,
        decisions=decisions,
        database_url=database_url,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = new_table("measure", "value", title=f"consentune bench core ({results['backend']})")
    for key, value in results.items():
        if key not in ("targets", "meets_targets", "ceilings", "meets_ceilings", "machine"):
            table.add_row(key, _fmt(value))
    for key, target in results["targets"].items():
        ok = results["meets_targets"][key]
        table.add_row(
            f"target {key}",
            f"{target:,} -> {'met' if ok else 'MISSED'} ({results[key] / target:.2f}x)",
        )
    for key, ceiling in results["ceilings"].items():
        ok = results["meets_ceilings"][key]
        table.add_row(f"ceiling {key}", f"<= {ceiling} -> {'met' if ok else 'MISSED'} ({results[key] / ceiling:.2f}x)")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("ledger")
def ledger(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/ledger.json"),
    entries: Annotated[int, typer.Option(help="entries per append run, and new entries for the audit")] = 200_000,
    batch: Annotated[int, typer.Option(help="records per append (the gate logs one request as one append)")] = 1_000,
    workers: Annotated[str, typer.Option(help="comma-separated worker process counts")] = "1,2,4",
    postgres_url: Annotated[
        str | None, typer.Option(envvar="CONSENTUNE_BENCH_POSTGRES_URL", help="also run on this PostgreSQL server")
    ] = None,
    receipt_entries: Annotated[int, typer.Option(help="entries in the offline receipt check (0: skip)")] = 1_000_000,
    sustained_seconds: Annotated[
        float, typer.Option(help="seconds of gate-style appends beside a running integrator, per run (0: skip)")
    ] = 20.0,
    sustained_batches: Annotated[
        str, typer.Option(help="records per gate-style append in the sustained runs (1 = a play)")
    ] = "1,100",
    play_seconds: Annotated[
        float, typer.Option(help="seconds of plays through the real gate per run, group commit off and on (0: skip)")
    ] = 10.0,
    play_threads: Annotated[int, typer.Option(min=1, help="threads asking for plays in each worker process")] = 16,
) -> None:
    """Ledger appends/s with 1, 2, 4 workers, integration rate, plays/s through the gate, audit, receipt check."""
    from consentune.bench.ledger import run_ledger

    results = run_ledger(
        entries=entries,
        batch=batch,
        workers=tuple(int(w) for w in workers.split(",") if w.strip()),
        postgres_url=postgres_url,
        receipt_entries=receipt_entries,
        sustained_s=sustained_seconds,
        sustained_batches=tuple(int(b) for b in sustained_batches.split(",") if b.strip()),
        play_s=play_seconds,
        play_threads=play_threads,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = new_table("backend", "measure", "entries", "seconds", "per s", "CPU s", title="consentune bench ledger")
    for backend in ("sqlite", "postgresql"):
        for key, row in results.get(backend, {}).items():
            if isinstance(row, dict) and not key.startswith("plays_"):
                rate = row.get("per_s")
                extra = (
                    f" (RSS {row['baseline_rss_mb']:.0f} -> peak {row['peak_rss_mb']:.0f} MB, ok={row['ok']})"
                    if "peak_rss_mb" in row
                    else ""
                )
                table.add_row(
                    backend,
                    key + extra,
                    _fmt(row.get("entries", "")),
                    _fmt(row["seconds"]),
                    _fmt(rate) if rate else "-",
                    _fmt(row["cpu_s"]),
                )
    if "receipt" in results:
        r = results["receipt"]
        table.add_row(
            "offline",
            f"receipt, {r['pages']} pages",
            _fmt(r["entries"]),
            _fmt(r["verify_s"]),
            "-",
            _fmt(r["verify_cpu_s"]),
        )
    console.print(table)
    _print_sustained(results)
    _print_plays(results)
    console.print(f"load average before/after: {results['load_average_before']} / {results['load_average_after']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


def _print_sustained(results: dict[str, Any]) -> None:
    table = new_table(
        "db", "W", "rec", "appends/s", "in/s", "integr/s", "q max", "q end", "q grow/s", "drain s", "CPU a/i",
        title="sustained: W workers, gate-style appends of rec records beside a running integrator "
        "(in/s appended, integr/s integrated, q = entries queued, q grow/s over the 2nd half)",
    )  # fmt: skip
    for backend in ("sqlite", "postgresql"):
        for key, row in results.get(backend, {}).items():
            if key.startswith("sustained_"):
                table.add_row(
                    backend, str(row["workers"]), str(row["batch"]), _fmt(row["appends_per_s"]), _fmt(row["per_s"]),
                    _fmt(row["integrated_per_s_in_window"]), _fmt(row["queue_depth_max"]),
                    _fmt(row["queue_depth_end"]), _fmt(row["queue_growth_per_s_second_half"]),
                    _fmt(row["drain_s_after_appends"]), f"{row['append_cpu_s']:.1f} / {row['integrator_cpu_s']:.1f}",
                )  # fmt: skip
    console.print(table)


def _print_plays(results: dict[str, Any]) -> None:
    table = new_table(
        "db", "W", "threads", "group", "plays/s", "vs alone", "p50 ms", "p99 ms", "CPU ms/play", "ledger rows",
        title="plays through the gate: W workers x threads asking for one play at a time beside a running "
        "integrator; group = most requests per shared transaction (1: each commits alone)",
    )  # fmt: skip
    for backend in ("sqlite", "postgresql"):
        rows = {k: r for k, r in results.get(backend, {}).items() if k.startswith("plays_")}
        for row in rows.values():
            alone = rows.get(f"plays_g1_{row['workers']}w")
            ratio = f"{row['plays_per_s'] / alone['plays_per_s']:.2f}x" if alone and alone["plays_per_s"] else "-"
            table.add_row(
                backend, str(row["workers"]), str(row["threads"]), str(row["group_commit"]),
                _fmt(row["plays_per_s"]), ratio, f"{row['latency_p50_ms']:.1f}", f"{row['latency_p99_ms']:.1f}",
                f"{row['cpu_ms_per_play']:.2f}", _fmt(row["ledger_rows_total"]),
            )  # fmt: skip
    console.print(table)


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
    table = new_table(
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
    frontier = new_table(
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
    rerank = new_table(
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
    other = new_table("measure", "value", title="cold start and serving")
    other.add_row("cold artists held out", f"{cold['cold_items']:,}")
    other.add_row(f"content model Recall@10 ({cold['params']})", f"{cold['content_recall_at_10']:.4f}")
    other.add_row("popularity-within-tag Recall@10", f"{cold['tag_popularity_recall_at_10']:.4f}")
    other.add_row("ratio", f"{cold['ratio']:.2f}x")
    other.add_row("retrain s (members refit, stage kept)", f"{main['retrain_s']:.2f}")
    other.add_row("two-stage fit s (incl. learning the stage)", f"{main['two_stage_fit_s']:.2f}")
    for key in ("p50_ms", "p99_ms", "consent_violations"):
        other.add_row(f"serving {key} (fold-in + long-tail bonus + consent mask)", _fmt(main["serving"][key]))
    console.print(other)
    seeds_table = new_table("measure (winning configuration)", "mean", "min", "max", "per seed", title="across seeds")
    for key, stats in results["across_seeds"].items():
        per_seed = ", ".join(f"{v:.4f}" for v in stats["values"])
        seeds_table.add_row(key, f"{stats['mean']:.4f}", f"{stats['min']:.4f}", f"{stats['max']:.4f}", per_seed)
    console.print(seeds_table)
    goals = new_table("goal", "value", "target", "result", title="goals (main seed)")
    for name, goal in results["goals"].items():
        verdict = f"{'met' if goal['met'] else 'MISSED'} ({goal['ratio']:.2f}x)"
        goals.add_row(name, f"{goal['value']:.4f}", f"{goal['target']}", verdict)
    console.print(goals)
    if "claims" in results:
        _print_claims(results["claims"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("shield")
def shield(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/shield.json"),
    quick: Annotated[bool, typer.Option("--quick", help="a small, fast configuration (~5 min)")] = False,
    tracks: Annotated[int | None, typer.Option(help="catalogue size (default 2000: 1% = 20 tracks)")] = None,
    base_pieces: Annotated[int | None, typer.Option(help="synthesized pieces the tracks vary (default 12)")] = None,
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
    newcomer_budget: Annotated[
        str | None, typer.Option(help="the server's newcomer budget, e.g. 'address=3,prefix=6' or 'off'")
    ] = None,
    peer_budget_off: Annotated[
        bool, typer.Option("--peer-budget-off", help="also run every seed with the newcomer budgets off")
    ] = False,
    catalogue_cache: Annotated[
        Path | None, typer.Option(help="folder keeping built catalogues for later runs with the same sizes")
    ] = None,
    restart_after_h: Annotated[
        float | None, typer.Option(help="restart the server once after this many simulated hours (default 33)")
    ] = None,
    no_restart: Annotated[bool, typer.Option("--no-restart", help="never restart the server")] = False,
    watermark: Annotated[
        bool | None, typer.Option("--watermark/--no-watermark", help="serve marked WAV streams (default on)")
    ] = None,
    in_process: Annotated[
        bool | None,
        typer.Option("--in-process/--subprocess", help="call the app in this process, not over HTTP (default off)"),
    ] = None,
) -> None:
    """Real server on 127.0.0.1 vs simulated scrapers and listeners: bytes scraped, listeners hindered, latency."""
    from rich.console import Console

    from consentune.bench.shield import QUICK, ShieldBenchConfig, run_shield, with_overrides
    from consentune.bench.shieldsim.report import tables

    config = with_overrides(
        QUICK if quick else ShieldBenchConfig(),
        tracks=tracks,
        base_pieces=base_pieces,
        sessions=sessions,
        days=days,
        seeds=seeds,
        first_seed=first_seed,
        strategies=tuple(strategy) if strategy else None,
        max_minutes=max_minutes,
        anonymous_audio=anonymous_audio,
        visitor_sessions=visitor_sessions,
        newcomer_budget=newcomer_budget,
        peer_budget_off=peer_budget_off or None,
        catalogue_cache=catalogue_cache,
        restart_after_h=restart_after_h,
        watermark=watermark,
        in_process=in_process,
    )
    if no_restart:
        config = replace(config, restart_after_h=None)
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
    table = new_table("measure", "value", "target", title="consentune bench organize")
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
    """Streaming detector vs FRAUDAR on the same injected attacks: P/R/F1 of all alerts, FPR, latency, events/s."""
    from consentune.bench.fraud import run_fraud

    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    if quick:
        seed_list = seed_list[:1]
    results = run_fraud(
        lastfm=lastfm, quick=quick, full=full, seeds=seed_list, sim_events=sim_events, progress=console.print
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = new_table(
        "background", "seed", "attack", "camo", "ours user P/R/F1", "ours track F1", "ours fan FPR",
        "latency h", "push ev/s", "search CPU s/day", "FRAUDAR user F1 (best/union)", "FRAUDAR track F1 (best)",
        "FRAUDAR fan FPR", title="consentune bench fraud (all alerts vs FRAUDAR's five blocks)",
    )  # fmt: skip
    for row in results["cells"]:
        o, f = row["ours"], row["fraudar"]
        u = o["user"]
        latency = "-" if o["latency_h"] is None else f"{o['latency_h']:.2f}"
        table.add_row(
            row["background"], str(row["seed"]), f"{row['bots']}x{row['targets']} d{row['density']}",
            row["camouflage"], f"{u['precision']:.2f}/{u['recall']:.2f}/{u['f1']:.2f}", f"{o['track']['f1']:.2f}",
            f"{o['fan_fpr']:.4f}", latency, f"{o['events_per_s']:,.0f}", f"{o['search_cpu_s_per_day']:.2f}",
            f"{f['user_best_block']['f1']:.2f}/{f['user']['f1']:.2f}", f"{f['track_best_block']['f1']:.2f}",
            f"{f['fan_fpr']:.4f}",
        )  # fmt: skip
    console.print(table)
    _print_fraud_goals(results["goals"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True, default=float))
    console.print(f"wrote {out}")


def _print_fraud_goals(goals: dict[str, Any]) -> None:
    table = new_table("goal (worst cell)", "target", "Consentune", "FRAUDAR", "result", title="fraud goals")
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
    scale: Annotated[
        str | None,
        typer.Option(help="index sizes to grow through, e.g. 100,1000,10000 (corpus + generated music)"),
    ] = None,
    queries: Annotated[int, typer.Option(help="--scale: excerpts per condition and length")] = 100,
    peer_max: Annotated[int, typer.Option(help="--scale: largest size audfprint is measured at")] = 1000,
    conditions: Annotated[
        str | None, typer.Option(help="--scale: comma-separated query conditions (default: seven)")
    ] = None,
    synth_seconds: Annotated[str, typer.Option(help="--scale: length range of generated pieces, MIN:MAX s")] = "30:60",
    corpus_share: Annotated[
        float, typer.Option(help="--scale: share of the smallest size taken from the corpus")
    ] = 0.5,
    claims: Annotated[
        bool, typer.Option("--claims/--no-claims", help="also the claims section (copies uploaded by other accounts)")
    ] = True,
) -> None:
    """Top-1 accuracy per condition and length, false matches, CPU, index size, 10x index, claims; audfprint beside.

    With ``--scale SIZES`` it instead grows one index through the sizes and prints sizes x conditions.
    """
    if scale is not None:
        _identify_scale(manifest, out, scale, seed=seed, queries=queries, peer=peer, peer_max=peer_max,
                        conditions=conditions, synth_seconds=synth_seconds, corpus_share=corpus_share)  # fmt: skip
        return
    from consentune.bench.identify import GOALS, QUOTED_AUDFPRINT, run_identify

    results = run_identify(manifest=manifest, quick=quick, seed=seed, group=group, peer=peer, progress=console.print)
    if claims:
        from consentune.bench.identify_claims import run_claims

        console.print("claims: copies of sampled originals uploaded by other accounts")
        size = 4 if quick else 12
        results["claims"] = run_claims(manifest, originals=size, unrelated=size, seed=seed, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    measured = results["peer"].startswith("audfprint2")
    runs = results["runs"]
    table = new_table(
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
    cost = new_table("measure", "ours", "peer", title="cost")
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
    goals = new_table("goal", "value", "target", "result", title="goals")
    for name, goal in results["summary"].items():
        goals.add_row(name, _fmt(goal["value"]), goal["target"], "met" if goal["met"] else "MISSED")
    console.print(goals)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


def _identify_scale(
    manifest: Path,
    out: Path,
    sizes: str,
    *,
    seed: int,
    queries: int,
    peer: bool,
    peer_max: int,
    conditions: str | None,
    synth_seconds: str,
    corpus_share: float,
) -> None:
    from consentune.bench.identify_render import CONDITIONS
    from consentune.bench.identify_scale import SCALE_CONDITIONS, run_identify_scale

    chosen = tuple(c.strip() for c in conditions.split(",")) if conditions else SCALE_CONDITIONS
    unknown = [c for c in chosen if c not in CONDITIONS]
    if unknown:
        raise typer.BadParameter(f"unknown condition(s) {unknown}; use some of {', '.join(CONDITIONS)}")
    try:
        low, high = (float(x) for x in synth_seconds.split(":"))
    except ValueError:
        raise typer.BadParameter(f"--synth-seconds {synth_seconds!r} is not MIN:MAX (e.g. 30:60)") from None
    if not 12.0 <= low <= high:
        raise typer.BadParameter(f"--synth-seconds {synth_seconds!r}: pieces must be 12 s or longer, MIN <= MAX")

    try:
        wanted = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"--scale {sizes!r} is not a comma-separated list of track counts") from None
    if not wanted or min(wanted) < 2:
        raise typer.BadParameter(f"--scale {sizes!r}: give at least one size of 2 tracks or more")
    if out == Path("bench-results/identify.json"):
        out = Path("bench-results/identify-scale.json")
    results = run_identify_scale(manifest=manifest, sizes=wanted, seed=seed, n_queries=queries, n_negatives=queries,
                                 conditions=chosen, synth_s=(low, high), corpus_share=corpus_share, peer=peer,
                                 peer_max=peer_max, progress=console.print)  # fmt: skip
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    rows = results["rows"]
    table = new_table("condition", *(f"{r['tracks']} tracks" for r in rows),
                      title=f"bench identify --scale: top-1 % ours [audfprint] (seed {seed}, {queries} excerpts/cell, "
                      f"corpus {results['corpus_indexed']} + generated pieces)")  # fmt: skip
    for name in rows[0]["conditions"]:
        cells = []
        for r in rows:
            c = r["conditions"][name]
            cells.append(f"{c['ours_pct']:.1f}" + (f" [{c['peer_pct']:.1f}]" if "peer_pct" in c else ""))
        table.add_row(name.replace("negative", "false matches"), *cells)
    console.print(table)
    cost = new_table("measure", *(f"{r['tracks']} tracks" for r in rows), title="cost (ours [audfprint])")

    def peer_cell(r: dict[str, Any], key: str, sub: str | None = None) -> str:
        value = r.get(key)
        if value is None:
            return ""
        return f" [{_fmt(value[sub] if sub else value)}]"

    for label, length in (("query CPU s, 10 s excerpt (fingerprint+lookup+match)", "10s"), ("query CPU s, 5 s", "5s")):
        cost.add_row(
            label, *(f"{r['query_cpu_s'][length]:.4f}" + peer_cell(r, "peer_query_cpu_s", length) for r in rows)
        )
    cost.add_row("postings handed to the matcher per clean 10 s query",
                 *(_fmt(r["candidates_per_clean_query"]) for r in rows))  # fmt: skip
    cost.add_row("stop-listed query hashes (cap)",
                 *(f"{_fmt(r['stopped_hashes_per_clean_query'])} ({r['stop_cap']})" for r in rows))  # fmt: skip
    build = [f"{r['build_cpu_s_per_audio_h']:.1f}" + peer_cell(r, "peer_build_cpu_s_per_audio_h") for r in rows]
    cost.add_row("build CPU-s per audio h (fingerprint + write; corpus decode incl.)", *build)
    cost.add_row(
        "  corpus tracks only (gate decode incl.)", *(f"{r['corpus_build_cpu_s_per_audio_h']:.1f}" for r in rows)
    )
    cost.add_row("  generating the pieces (not in build)", *(f"{r['render_cpu_s_per_audio_h']:.1f}" for r in rows))
    cost.add_row("index MB per audio h", *(f"{r['index_mb_per_audio_h']:.3f}" for r in rows))
    cost.add_row(
        "audio h / postings / segments", *(f"{r['audio_h']} / {r['postings']:,} / {r['segments']}" for r in rows)
    )
    console.print(cost)
    console.print(
        f"query decode through the gate (not above): {results['query_decode_cpu_s_mean']:.4f} CPU-s per query"
    )
    goals = new_table("goal", "value", "target", "result", title="goals")
    for name, goal in results["summary"].items():
        goals.add_row(name, _fmt(goal["value"]), goal["target"], "met" if goal["met"] else "MISSED")
    console.print(goals)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("mix")
def mix(
    manifest: Annotated[Path, typer.Option(help="music corpus manifest.tsv (path, package, duration_s)")],
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/identify-mix.json"),
    mixes: Annotated[int, typer.Option(min=1, max=50, help="mixes to build (30-60 min each; 10-15 with --quick)")] = 2,
    seed: Annotated[int, typer.Option(help="corpus split and mix seed")] = 2026,
    quick: Annotated[bool, typer.Option("--quick", help="16 indexed tracks, 10-15-min mixes")] = False,
) -> None:
    """DJ-mix tracklists: precision/recall, boundary error, unknown tracks, CPU per mix hour; per-window peer beside."""
    from consentune.bench.identify_mix import GOALS, run_mix_bench

    results = run_mix_bench(manifest=manifest, mixes=mixes, seed=seed, quick=quick, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    summary = results["summary"]
    ours, peer = summary["ours"], summary["peer"]
    table = new_table(
        "measure", "ours (Viterbi)", "peer (per-window top-1)", "goal",
        title=f"consentune bench mix (seed {seed}, {len(results['mixes'])} mixes, {summary['mix_hours']} h, "
        f"{results['indexed_tracks']} indexed)",
    )  # fmt: skip
    rows = [
        ("tracklist precision (played >= 30 s)", "precision", f">= {GOALS['precision']}"),
        ("tracklist recall (played >= 30 s)", "recall", f">= {GOALS['recall']}"),
        ("boundaries within 5 s", "boundary_within_5s", f">= {GOALS['boundary_within_5s']}"),
        ("  next to an indexed track", "boundary_within_5s_known_neighbour", ""),
        ("  next to a track not in the index", "boundary_within_5s_unknown_neighbour", ""),
        ("boundary error median s", "boundary_median_s", ""),
        ("boundary error p90 s", "boundary_p90_s", ""),
        ("unindexed tracks reported unknown", "unknown_reported_unknown", "all"),
    ]
    for label, key, goal in rows:
        table.add_row(label, _fmt(ours[key]), _fmt(peer[key]), goal)
    table.add_row("CPU-s per mix hour (decode incl.)", _fmt(ours["cpu_s_per_mix_h"]), "same windows",
                  f"<= {GOALS['cpu_s_per_mix_h']:g}")  # fmt: skip
    console.print(table)
    console.print(f"wrote {out}")


@bench_app.command("claims")
def claims(
    manifest: Annotated[Path, typer.Option(help="music corpus manifest.tsv (make-music-corpus.sh)")],
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/claims.json"),
    originals: Annotated[int, typer.Option(min=1, max=500, help="originals sampled from the corpus")] = 12,
    unrelated: Annotated[int, typer.Option(min=0, max=500, help="unrelated corpus tracks uploaded beside")] = 12,
    seed: Annotated[int, typer.Option(help="sampling and variant seed")] = 2026,
) -> None:
    """Re-upload claims: copies claimed (incl. a hoarding account), false claims, near-duplicate precision/recall."""
    from consentune.bench.identify_claims import run_claims

    results = run_claims(manifest, originals=originals, unrelated=unrelated, seed=seed, progress=console.print)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    _print_claims(results)


def _print_claims(results: dict[str, Any]) -> None:
    from consentune.bench.identify_claims import TARGETS

    table = new_table(
        "measure",
        "value",
        "goal",
        title=f"consentune bench claims (seed {results['seed']}, {results['copies']} copies)",
    )
    for key, goal in TARGETS.items():
        value = results[key]
        table.add_row(key, _fmt(float(value)), f"{'≤' if key == 'claims_false' else '≥'} {goal}")
    table.add_row("hoarder copies claimed", str(results["hoarder_copies_claimed"]), "all")
    table.add_row("partial claims among copies", str(results["claims_partial"]), "")
    for kind, share in results["claims_per_variant"].items():
        table.add_row(f"claimed: {kind}", share, "")
    for label, rows in (
        ("false claim", results["claims_false_detail"]),
        ("'unrelated' pair sharing audio", results["claims_shared_audio_detail"]),
    ):
        for row in rows:
            check = row.get("audio_check")
            checked = f", audio check {check['score']} (null max {check['null_max']})" if check else ""
            table.add_row(
                label,
                f"{row['copy']} ← {row['original']}",
                f"score {row['score']}, copy {row['copy_range_s']} s, original {row['original_range_s']} s{checked}",
            )
    console.print(table)


@bench_app.command("workers")
def workers(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/workers.json"),
    counts: Annotated[
        str, typer.Option("--workers", help="comma-separated worker counts; the first is the base")
    ] = "1,2",
    seconds: Annotated[float, typer.Option(help="load per route and worker count")] = 10.0,
    connections: Annotated[int, typer.Option(help="concurrent keep-alive connections")] = 32,
    repeats: Annotated[
        int, typer.Option(min=1, help="servers started per worker count, counts alternating; the median is shown")
    ] = 3,
    shield: Annotated[
        bool, typer.Option("--shield", help="also: the shield's shared state (catch as on one worker, latency)")
    ] = False,
    shield_states: Annotated[str, typer.Option(help="with --shield: shield states to serve listeners with")] = (
        "memory,file,redis"
    ),
    shield_workers: Annotated[int, typer.Option(help="with --shield: workers a scraper is spread over")] = 4,
    shield_seeds: Annotated[int, typer.Option(help="with --shield: seeds of the catch comparison")] = 3,
    redis_url: Annotated[str | None, typer.Option(help="Redis for the redis state (default: none, skipped)")] = None,
) -> None:
    """API requests/s and latency with 1, 2, ... `serve --workers` processes (wrk when installed).

    With ``--shield``: listener requests through the guard per shield state, and a scraper spread over
    ``--shield-workers`` workers vs the same on one worker (catch, listeners hindered, added latency)."""
    from consentune.bench.workers import run_workers

    states = (
        tuple(st for st in shield_states.split(",") if st.strip() and (st != "redis" or redis_url)) if shield else ()
    )
    results = run_workers(
        workers=[int(c) for c in counts.split(",") if c.strip()],
        seconds=seconds,
        connections=connections,
        progress=console.print,
        shield_states=states,
        redis_url=redis_url,
        repeats=repeats,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    title = f"consentune bench workers ({results['tool']}, load average {results['load_average_1m']:.1f})"
    table = new_table("route", "workers", "req/s", "p50 ms", "p99 ms", "non-2xx", "x base", "server CPU ms/req",
                      title=title)  # fmt: skip
    for route, per in results["rounds"].items():
        for count, row in per.items():
            cells = [row["requests_per_s"], row.get("p50_ms", ""), row.get("p99_ms", ""), row["non_2xx"]]
            table.add_row(route, count, *(_fmt(c) for c in cells), _fmt(results["scaling"][route][count]),
                          _fmt(row.get("server_cpu_ms_per_request", "")))  # fmt: skip
    console.print(table)
    if shield:
        results["shield"] = _shield_catch(shield_workers, shield_seeds, redis_url)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


def _shield_catch(count: int, seeds: int, redis_url: str | None) -> dict[str, object]:
    from consentune.bench.sharedshield import run_shared_shield

    found = run_shared_shield(workers=count, seeds=seeds, redis_url=redis_url, progress=console.print)
    title = f"scraper over {count} workers ({found['state']} state) vs one worker; listeners' guard checks"
    table = new_table("peer", "seed", "plays before block (per strategy)", "listeners hindered", "p50 ms", "p99 ms",
                      "CPU ms/check", title=title)  # fmt: skip
    for peer, runs in found["runs"].items():
        for run in runs:
            blocked = ", ".join(f"{k} {v if v is not None else 'never'}" for k, v in run["blocked_after_plays"].items())
            table.add_row(peer, str(run["seed"]), blocked, str(run["listeners_hindered"]), _fmt(run["p50_ms"]),
                          _fmt(run["p99_ms"]), _fmt(run["cpu_ms_per_check"]))  # fmt: skip
    console.print(table)
    console.print(
        f"shared == one worker: {found['same_as_one_worker']}; added ms (median over seeds): {found['added_ms']}"
    )
    return found


@bench_app.command("scale")
def scale(
    sizes: Annotated[str, typer.Option(help="comma-separated catalogue sizes (tracks)")] = "10000,100000",
    backend: Annotated[str, typer.Option(help="sqlite or postgres")] = "sqlite",
    plays_per_track: Annotated[float, typer.Option(help="plays loaded per track (capped by --max-plays)")] = 1.0,
    max_plays: Annotated[int, typer.Option(help="most plays loaded at any size")] = 10_000_000,
    import_rows: Annotated[int, typer.Option(help="rows of the timed `plays import` (0 skips it)")] = 200_000,
    postgres_url: Annotated[
        str, typer.Option(help="PostgreSQL server; each size gets a private schema, dropped afterwards")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/scale.json"),
) -> None:
    """Catalogue pages, search, robots.txt, track policy, operator and reach pages, plays import, per size."""
    from consentune.bench.scale import run_scale

    numbers = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    results = run_scale(
        sizes=numbers,
        backend=backend,
        plays_per_track=plays_per_track,
        max_plays=max_plays,
        import_rows=import_rows,
        postgres_url=postgres_url,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    columns = [f"{int(s):,}" for s in results["sizes"]]
    table = new_table("measure", *columns, f"x vs {columns[0]}", title=f"consentune bench scale ({backend})")
    first = next(iter(results["sizes"].values()))
    for key in first:
        ratio = results["growth_vs_smallest"].get(key)
        values = [_fmt(results["sizes"][s].get(key, "")) for s in results["sizes"]]
        table.add_row(key, *values, "" if ratio is None else f"{ratio:.2f}")
    console.print(table)
    for goal, met in results["goals"].items():
        console.print(f"goal {goal}: {'met' if met else 'MISSED'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("jobs")
def jobs(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/jobs.json"),
    tracks: Annotated[int, typer.Option(help="synthesized tracks to backfill")] = 24,
    seconds: Annotated[float, typer.Option(help="length of each track (s)")] = 6.0,
    batch: Annotated[int, typer.Option(help="tracks per task")] = 2,
    rounds: Annotated[int, typer.Option(help="rounds over all engines in turn; the median round is reported")] = 3,
    ray: Annotated[
        bool, typer.Option("--ray/--no-ray", help="also run the Ray engine on a local 2-node cluster")
    ] = True,
    database_url: Annotated[str | None, typer.Option(help="benchmark this database instead of a temp SQLite")] = None,
) -> None:
    """Analyze + fingerprint backfill: local 1 vs 2 workers vs Ray (2 nodes), overhead, ledger entries."""
    from rich.console import Console

    from consentune.bench.jobs import run_jobs_bench

    results = run_jobs_bench(
        tracks=tracks,
        duration_s=seconds,
        batch=batch,
        rounds=rounds,
        database_url=database_url,
        ray=ray,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    title = (
        f"consentune bench jobs ({results['tracks']} x {results['track_seconds']:.0f}-s tracks, {results['backend']})"
    )
    table = new_table(
        "run",
        "workers",
        "tracks/s",
        "wall s",
        "worker s/track",
        "cpu s/track",
        "cpu share",
        "overhead ms/task",
        "ledger/1k",
        "appends/1k",
        title=title,
    )
    for name, run in results["runs"].items():
        keys = ("tracks_per_s", "wall_s", "compute_per_track_s", "cpu_per_track_s", "cpu_share_per_worker",
                "overhead_per_task_ms", "ledger_entries_per_1000_tracks", "ledger_appends_per_1000_tracks")  # fmt: skip
        table.add_row(name, str(run["workers"]), *(_fmt(run[k]) for k in keys))
    Console(width=max(console.width, 140)).print(table)
    for key, goal in results["goals"].items():
        console.print(
            f"{key}: {results[key]:.2f} (goal >= {goal}) -> {'met' if results['meets_goals'][key] else 'MISSED'}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("jobs-train")
def jobs_train(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/jobs-train.json"),
    plays: Annotated[int, typer.Option(help="plays to generate")] = 1_000_000,
    tracks: Annotated[int, typer.Option(help="tracks in the catalogue")] = 10_000,
    users: Annotated[int, typer.Option(help="listeners")] = 20_000,
    partition: Annotated[int, typer.Option(help="tracks per partition (one grant and ledger append each)")] = 2_000,
    single: Annotated[
        bool, typer.Option("--single/--no-single", help="also run single-process `recommend train` as the peer")
    ] = True,
    database_url: Annotated[str | None, typer.Option(help="benchmark this database instead of a temp SQLite")] = None,
) -> None:
    """train-recommend as a partitioned job vs single-process training: plays/s, phases, peak memory, ledger."""
    from consentune.bench.jobs_train import run_train_bench

    results = run_train_bench(
        plays=plays, tracks=tracks, users=users, partition=partition, single=single, database_url=database_url,
        progress=console.print,
    )  # fmt: skip
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    job = results["job"]
    table = new_table("run", "wall s", "read+count s", "plays read/s", "fit+publish s", "peak RSS MB", "ledger entries",
                      title=f"consentune bench jobs-train ({plays:,} plays, {tracks:,} tracks, {users:,} listeners, "
                      f"{results['backend']})")  # fmt: skip
    table.add_row("job", *(_fmt(job[k]) for k in ("wall_s", "read_and_count_s", "plays_read_per_s",
                  "fit_and_publish_s", "peak_rss_mb", "ledger_entries")))  # fmt: skip
    if "single" in results:
        table.add_row("single process", _fmt(results["single"]["wall_s"]), "", "", "",
                      _fmt(results["single"]["peak_rss_mb"]), "")  # fmt: skip
        console.print(f"single / job wall time: {results['job_vs_single_wall']:.2f}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")


@bench_app.command("watermark")
def watermark(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/watermark.json"),
    clips: Annotated[int, typer.Option(help="30-s clips (each through every transformation)")] = 240,
    seed: Annotated[int, typer.Option(help="seed for payloads, crops and keys")] = 7,
    corpus: Annotated[
        Path | None, typer.Option(help="real-music manifest (TSV with path, duration_s); default CONSENTUNE_CORPUS")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 4,
    max_minutes: Annotated[
        float, typer.Option(help="stop starting clips after this many minutes and report those done")
    ] = 8.0,
) -> None:
    """Watermark recovery per transformation, false attribution on unmarked and other-key audio, audibility."""
    from consentune.bench.watermark import DEFAULT_CORPUS, run_serving, run_watermark

    began = time.monotonic()  # the budget covers the serving measurement too
    serving = run_serving(corpus=corpus or DEFAULT_CORPUS)
    max_minutes -= (time.monotonic() - began) / 60
    results = run_watermark(
        clips=clips,
        seed=seed,
        progress=console.print,
        corpus=corpus or DEFAULT_CORPUS,
        workers=workers,
        max_minutes=max_minutes,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    results["serving"] = serving
    title = f"consentune bench watermark ({results['clips']} clips of 30 s from {results['source']})"
    table = new_table("measure", "value", title=title)
    for name, rate in results["recovery_rate"].items():
        lower = results["recovery_lower_95"][name]
        table.add_row(f"recovered after {name}", f"{rate:.1%} (95 % lower bound {lower:.1%})")
    for key, value in results.items():
        if key not in ("recovery_rate", "recovery_lower_95", "machine", "source", "misses", "serving", "per_clip"):
            table.add_row(key, _fmt(value) if not isinstance(value, float) or value >= 1e-3 else f"{value:.1e}")
    for key, value in serving.items():
        table.add_row(f"serving: {key}", _fmt(value))
    for name, missed in results["misses"].items():
        table.add_row(f"missed after {name}", ", ".join(missed[:6]) + (" …" if len(missed) > 6 else ""))
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")
