"""The tables ``consentune bench shield`` prints: scrapers, listeners, latency, goals."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _pct(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _h(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def scraper_table(results: dict[str, Any]) -> Table:
    seeds = results["seeds"]
    cat = results["catalogue"]
    title = (
        f"scrapers vs {cat['tracks']:,} tracks ({cat['bytes'] / 2**20:,.0f} MiB, {cat['audio_h']:,.0f} h; "
        f"1% = {cat['one_percent_tracks']:.0f} tracks), per seed and worst"
    )
    table = Table("strategy", "seed", "tracks touched / complete", "audio MiB", "audio h", "share %",
                  "1st challenge h", "1st block h", "plays", "sessions", "accts", "requests", "stopped mostly by",
                  "goal <1%", title=title)  # fmt: skip
    for name in results["strategies"]:
        rows = [(s["seed"], s["strategies"][name]) for s in seeds]
        for seed, r in rows:
            table.add_row(name, str(seed), f"{r['tracks_touched']:,} / {r['tracks_complete']:,}",
                          f"{r['bytes'] / 2**20:,.1f}", f"{r['audio_h']:.1f}", _pct(r["share_pct"]),
                          _h(r["first_challenge_h"]), _h(r["first_block_h"]), f"{r['plays']:,}",
                          f"{r['sessions']:,}", f"{r['accounts']:,}", f"{r['requests']:,}",
                          ", ".join(list(r["stopped_by"])[:2]), "met" if r["goal_met"] else "MISSED")  # fmt: skip
        worst = max((r for _s, r in rows), key=lambda r: r["share_pct"])
        table.add_row(f"[bold]{name}[/bold]", "worst", "", "", "", f"[bold]{_pct(worst['share_pct'])}[/bold]",
                      "", "", "", "", "", "", "", "met" if worst["goal_met"] else "[bold]MISSED[/bold]",
                      end_section=True)  # fmt: skip
    return table


def legit_table(results: dict[str, Any]) -> Table:
    table = Table("seed", "users", "sessions", "family / campus NAT", "heavy / binge", "with history", "plays",
                  "resumes (new URL)", "hindered sessions", "hindered plays %", "hindered with history",
                  "challenged", "blocked", "newcomer limit", "rate-limited (not stream-ahead)", "stream-ahead 429s",
                  title="legitimate listeners (account holders)")  # fmt: skip
    for s in results["seeds"]:
        g = s["legit"]
        table.add_row(str(s["seed"]), f"{g['users']:,}", f"{g['sessions']:,}",
                      f"{g['nat_sessions'] - g.get('campus_sessions', 0):,} / {g.get('campus_sessions', 0):,}",
                      f"{g['heavy_sessions']:,} / {g.get('binge_sessions', 0):,}",
                      f"{g.get('sessions_with_history', 0):,}", f"{g['plays']:,}",
                      f"{g.get('resumes', 0):,} ({g.get('renewed_urls', 0):,})", f"{g['hindered']:,}",
                      f"{g.get('hindered_plays_pct', 0.0):.3f}", f"{g.get('hindered_with_history', 0):,}",
                      f"{g['challenged']:,}", f"{g['blocked']:,}", f"{g.get('newcomer_limited', 0):,}",
                      f"{g['rate_limited_other']:,}", f"{g['stream_ahead_429s']:,}")  # fmt: skip
    return table


def visitor_table(results: dict[str, Any]) -> Table:
    policy = results["config"]["anonymous_audio"]
    title = f"anonymous visitors (policy: {policy}; not in the legit goal)"
    table = Table("seed", "visits", "plays served", "of which previews", "visits asked to sign in",
                  "hindered by the shield", title=title)  # fmt: skip
    for s in results["seeds"]:
        v = s["visitors"]
        table.add_row(str(s["seed"]), f"{v['sessions']:,}", f"{v['plays_served']:,}", f"{v['previews']:,}",
                      f"{v['asked_to_sign_in']:,}", f"{v['hindered_by_shield']:,}")  # fmt: skip
    return table


def latency_table(results: dict[str, Any]) -> Table:
    table = Table("seed", "requests", "req/s (wall)", "shield p50 ms", "p95", "p99", "max", "client RTT p50 ms",
                  "RTT p99", "wall s", "sim h reached", "cap hit",
                  title="added latency (Server-Timing shield;dur) over all requests")  # fmt: skip
    for s in results["seeds"]:
        sh, rtt = s["latency"]["shield_ms"], s["latency"]["rtt_ms"]
        table.add_row(str(s["seed"]), f"{s['requests']:,}", f"{s['requests_per_s']:.0f}", f"{sh['p50']:.3f}",
                      f"{sh['p95']:.3f}", f"{sh['p99']:.3f}", f"{sh['max']:.1f}", f"{rtt['p50']:.2f}",
                      f"{rtt['p99']:.2f}", f"{s['wall_s']:.0f}", f"{s['simulated_h_reached']:.1f}",
                      s["stopped_by_cap"] or "-")  # fmt: skip
    return table


def goals_table(results: dict[str, Any]) -> Table:
    table = Table("goal", "worst seed", "ratio to goal", "result", title="goals (worst case over seeds)")
    for name, g in results["goals"].items():
        table.add_row(name, f"{g['worst']:.3f}", f"{g['ratio']:.2f}x", "met" if g["met"] else "[bold]MISSED[/bold]")
    return table


def identity_cost_table(results: dict[str, Any]) -> Table:
    """Distinct audio per identity-day and per /24-day, beside what real newcomers got in the same run."""
    title = "identity cost: audio h per identity-day and per /24-day vs the same run's real newcomers' medians"
    table = Table("strategy", "seed", "audio h", "share %", "identity-days", "h / identity-day", "newcomer median",
                  "/24-days", "h / /24-day", "newcomer median", "newcomer refusals", "goal", title=title)  # fmt: skip
    runs = [(str(s["seed"]), s) for s in results["seeds"]]
    runs += [(f"{s['seed']} budgets off", s) for s in results.get("peer_seeds_budget_off", [])]
    for name in results["strategies"]:
        for label, s in runs:
            r = s["strategies"][name]
            served = s.get("newcomer_served", {})
            ident = served.get("identity_day_h", {}).get("median", 0.0)
            prefix = served.get("prefix_day_h", {}).get("median", 0.0)
            table.add_row(name, label, f"{r['audio_h']:.1f}", _pct(r["share_pct"]), f"{r['identity_days']:,}",
                          f"{r['audio_h_per_identity_day']:.2f}", f"{ident:.2f}", f"{r['prefix_days']:,}",
                          f"{r['audio_h_per_prefix_day']:.2f}", f"{prefix:.2f}", f"{r['newcomer_limited']:,}",
                          _verdict(r))  # fmt: skip
    return table


def _verdict(r: dict[str, Any]) -> str:
    if r["goal_met"]:
        return "met (<1%)"
    return "slowed" if r.get("slowed_goal_met") else "[bold]MISSED[/bold]"


def newcomer_table(results: dict[str, Any]) -> Table:
    """What the listener model's newcomers need per clock hour (seconds), from which the caps are set."""
    table = Table("seed", "newcomers", "identity p99 / max s", "address p99 / max s", "/24 p99 / max s",
                  "global p99 / max s", "h per identity-day p50 / max", "legit hindered plays %",
                  title="real newcomers' audio per clock hour (listener model)")  # fmt: skip
    for s in results["seeds"]:
        n = s.get("newcomer_need")
        if n is None:
            continue
        cell = {k: f"{n[k]['p99']:.0f} / {n[k]['max']:.0f}" for k in ("identity", "address", "prefix", "global")}
        day = n["identity_day_h"]
        table.add_row(str(s["seed"]), str(n["newcomers"]), cell["identity"], cell["address"], cell["prefix"],
                      cell["global"], f"{day['p50']:.2f} / {day['max']:.2f}",
                      f"{s['legit'].get('hindered_plays_pct', 0.0):.3f}")  # fmt: skip
    for s in results.get("peer_seeds_budget_off", []):
        table.add_row(
            f"{s['seed']} budgets off", "", "", "", "", "", "", f"{s['legit'].get('hindered_plays_pct', 0.0):.3f}"
        )
    return table


def tables(results: dict[str, Any]) -> list[Table]:
    return [scraper_table(results), identity_cost_table(results), newcomer_table(results), legit_table(results),
            visitor_table(results), latency_table(results), goals_table(results)]  # fmt: skip


__all__ = ["tables"]
