"""``consentune bench fraud``: the streaming detector vs FRAUDAR over a fixed grid of collusion attacks.

The grid (``GRID``) is a base attack — 200 human-timed accounts on their own
residential addresses and devices, 30 targets at density 0.1, half their
plays camouflage on popular tracks, 8 plays a day for 7 days — and every
axis of ``family.CollusionSpec`` varied one at a time over its range, plus
corner cells.  Every cell's stream also carries the five organic look-alikes
(``family.lookalikes``), which must not be flagged.  Seeds are fixed: cell
``n`` of seed ``s`` draws its attack with ``1000 s + n`` and its look-alikes
with ``1000 s + 500 + n``; the background is ``organic(..., seed=s)``.

Scoring (fixed before any result was seen): our flagged accounts are the
members of *all* alerts; FRAUDAR's (``rgmining-fraudar``,
``detectMultiple(..., logWeightedAveDegree, 5)`` on the binary account x
track graph of the same events) the union of its five blocks.  Recall and
precision of accounts against the attack's, the look-alike flag rate (share
of look-alike accounts flagged; worst kind and all kinds), the organic flag
rate (organic accounts flagged), and latency: the first alert mostly of the
attack's accounts raised after the attack began, minus its start.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from consentune.errors import InvalidInput
from consentune.fraud import StreamDetector
from consentune.fraud.encode import EventBatch
from consentune.fraud.family import LOOKALIKES, CollusionSpec, collusion, lookalikes
from consentune.fraud.simulate import DAY, START, Stream, from_counts, organic

ATTACK_DAY = 2.0  # attacks start on day 2 of the background (a day of history for the window search)
LOOKALIKE_DAY = 2.0
BASE = CollusionSpec(
    accounts=200, targets=30, density=0.1, camouflage=0.5, camouflage_on="popular", human=1.0,
    address_diversity=1.0, device_diversity=1.0, plays_per_day=8.0, days=7.0, ramp_days=0.0, aged=False,
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    axis: str  # which axis this cell varies from the base ("base", "corner")
    spec: CollusionSpec


def _axis(name: str, values: list[Any], field: str | None = None) -> list[Cell]:
    return [Cell(name, replace(BASE, **{field or name: v})) for v in values]


GRID: list[Cell] = [
    Cell("base", BASE),
    *_axis("accounts", [50, 1000]),
    *_axis("targets", [5, 1000]),
    *_axis("density", [0.02, 0.05, 1.0]),
    Cell("camouflage", replace(BASE, camouflage=0.8, camouflage_on="random")),
    *_axis("human", [0.0]),
    Cell("infrastructure", replace(BASE, address_diversity=0.0, device_diversity=0.0)),
    *_axis("plays_per_day", [3.0]),
    *_axis("days", [1.0]),
    *_axis("ramp_days", [3.0]),
    Cell("corner", replace(BASE, density=0.05, camouflage=0.8, camouflage_on="random", plays_per_day=3.0)),
]  # 15 cells: about what fits a 10-minute run on the shared 2-core machine (about 40 s a cell)
QUICK = [GRID[0], GRID[5], GRID[8], GRID[9]]  # base, density 0.02, camouflage 0.8 random, human 0 (development)


def _prf(found: set[int], truth: set[int]) -> dict[str, float]:
    hit = len(found & truth)
    p = hit / len(found) if found else 0.0
    r = hit / len(truth) if truth else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _lastfm(path: Path, seed: int) -> Stream:
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", hint="pass --lastfm .../lastfm-2k/user_artists.dat")
    raw = np.loadtxt(path, skiprows=1, dtype=np.int64)
    users, u_local = np.unique(raw[:, 0], return_inverse=True)
    items, i_local = np.unique(raw[:, 1], return_inverse=True)
    return from_counts(
        users=u_local.astype(np.int32), items=i_local.astype(np.int32), counts=raw[:, 2], days=10, seed=seed,
        n_users=len(users), n_tracks=len(items),
    )  # fmt: skip


def _ours(events: EventBatch, batch: int) -> tuple[list[Any], float, float]:
    """Alerts, CPU seconds on the intake path (``push``: admission, state, window search) and CPU seconds
    in the scheduled collusion searches (run every ``collusion.every_s`` of event time by ``feed``)."""
    detector = StreamDetector()
    started = time.process_time()
    for i in range(0, len(events), batch):
        detector.feed(events.take(np.arange(i, min(i + batch, len(events)))))
    detector.flush()
    total = time.process_time() - started
    return detector.alerts(), total - detector.search_cpu_s, detector.search_cpu_s


def _fraudar(events: EventBatch, n_users: int, n_tracks: int) -> tuple[list[tuple[set[int], set[int]]], float]:
    """FRAUDAR's five blocks as (accounts, tracks), and its seconds."""
    try:
        # imported by name: the peer is an optional extra, typed or not, installed or not
        greedy: Any = importlib.import_module("fraudar.export.greedy")
    except ModuleNotFoundError:
        raise InvalidInput("the FRAUDAR peer needs rgmining-fraudar", hint="pip install 'consentune[bench]'") from None
    pairs = np.unique(events.user.astype(np.int64) * n_tracks + events.track)
    rows, cols = pairs // n_tracks, pairs % n_tracks
    matrix = sp.coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n_users, n_tracks)).tocsc().astype(int)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress lines
        found = greedy.detectMultiple(matrix, greedy.logWeightedAveDegree, 5)
    blocks = [({int(r) for r in rs}, {int(c) for c in cs}) for (rs, cs), _score in found]
    return blocks, time.perf_counter() - started


def _flag_rates(flagged: set[int], groups: dict[str, set[int]], organic_users: set[int]) -> dict[str, float]:
    rates = {kind: len(flagged & members) / max(1, len(members)) for kind, members in groups.items()}
    everyone = set().union(*groups.values())
    rates["all_lookalikes"] = len(flagged & everyone) / max(1, len(everyone))
    rates["worst_lookalike"] = max((rates[k] for k in groups), default=0.0)
    rates["organic"] = len(flagged & organic_users) / max(1, len(organic_users))
    return rates


def run_cell(stream: Stream, cell: Cell, *, attack_seed: int, lookalike_seed: int, batch: int) -> dict[str, Any]:
    spec = replace(cell.spec, start=START + ATTACK_DAY * DAY)
    attack = collusion(stream, spec, seed=attack_seed)
    looks = lookalikes(stream, start=START + LOOKALIKE_DAY * DAY, seed=lookalike_seed)
    merged = EventBatch.concat([stream.events, attack.events, *[g.events for g in looks]])
    events = merged.take(np.argsort(merged.t, kind="stable"))
    bots = set(attack.accounts.tolist())
    groups: dict[str, set[int]] = {k: set() for k in LOOKALIKES}
    for g in looks:
        groups[g.kind] |= set(g.accounts.tolist())
    organic_users = set(range(stream.n_users))
    n_users = int(events.user.max()) + 1
    n_tracks = max(stream.n_tracks, int(events.track.max()) + 1)

    alerts, seconds, search_seconds = _ours(events, batch)
    flagged = {int(m) for a in alerts for m in a.members}
    caught = [a.raised_at for a in alerts if a.raised_at >= spec.start
              and len({int(m) for m in a.members} & bots) >= 0.5 * len(a.members)]  # fmt: skip
    targets = set(attack.tracks.tolist())
    tracks = {int(t) for a in alerts for t in a.tracks}
    rates = _flag_rates(flagged, groups, organic_users)
    ours = {
        "user": _prf(flagged, bots), "track": _prf(tracks, targets), "fan_fpr": rates["worst_lookalike"],
        "flag_rates": rates, "latency_h": (min(caught) - spec.start) / 3600 if caught else None,
        "events_per_s": len(events) / seconds, "search_cpu_s": search_seconds,
        "search_cpu_s_per_day": search_seconds / max(float(events.t[-1] - events.t[0]) / DAY, 1e-9),
        "alerts": len(alerts),
    }  # fmt: skip
    blocks, f_seconds = _fraudar(events, n_users, n_tracks)
    union = set().union(*(rows for rows, _ in blocks)) if blocks else set()
    best = max((_prf(rows, bots) for rows, _ in blocks), key=lambda m: m["f1"], default=_prf(set(), bots))
    best_tracks = max((_prf(cols, targets) for _, cols in blocks), key=lambda m: m["f1"],
                      default=_prf(set(), targets))  # fmt: skip
    f_rates = _flag_rates(union, groups, organic_users)
    fraudar = {
        "user": _prf(union, bots), "user_best_block": best, "track_best_block": best_tracks,
        "fan_fpr": f_rates["worst_lookalike"], "flag_rates": f_rates, "seconds": f_seconds,
    }  # fmt: skip
    spec_out = {k: v for k, v in asdict(spec).items() if k != "start"}
    return {
        "events": len(events), "axis": cell.axis, "spec": spec_out, "ours": ours, "fraudar": fraudar,
        # the columns the CLI table prints
        "bots": spec.accounts, "targets": spec.targets, "density": spec.density,
        "camouflage": f"{cell.axis}:{_label(cell.spec)}",
    }  # fmt: skip


def _label(spec: CollusionSpec) -> str:
    """The cell's departures from the base, e.g. ``human=0.0``."""
    base, own = asdict(BASE), asdict(spec)
    changed = [f"{k}={own[k]}" for k in own if k != "start" and own[k] != base[k]]
    return ",".join(changed) or "base"


def _background(seed: int, days: float, users: int) -> Stream:
    return organic(users=users, tracks=15 * users // 2, events=int(users * 10 * days), days=days, seed=seed)


def run_fraud(
    *,
    lastfm: Path | None,
    quick: bool,
    full: bool,
    seeds: list[int],
    sim_events: int,
    batch: int = 20_000,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The grid (``QUICK`` with ``quick``) over ``seeds`` (the first only unless ``full``);
    ``sim_events`` is ignored: the background is 1,000 organic accounts x 10 plays a day."""
    cells = QUICK if quick else GRID
    seeds = seeds if full else seeds[:1]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for seed in seeds:
        cache: dict[float, Stream] = {}
        for number, cell in enumerate(cells):
            days = max(10.0, ATTACK_DAY + cell.spec.days + 1.0)
            if days not in cache:
                cache[days] = _background(seed, days, 1000)
            backgrounds = {"simulated": cache[days]}
            if lastfm is not None and cell.axis == "base":
                backgrounds["lastfm-2k"] = _lastfm(lastfm, seed)
            for name, stream in backgrounds.items():
                row = run_cell(stream, cell, attack_seed=1000 * seed + number,
                               lookalike_seed=1000 * seed + 500 + number, batch=batch)  # fmt: skip
                row.update({"background": name, "seed": seed})
                results.append(row)
                o, f = row["ours"], row["fraudar"]
                progress(
                    f"{name} seed {seed} {row['camouflage']}: ours R {o['user']['recall']:.2f} "
                    f"P {o['user']['precision']:.2f} look-alikes {o['flag_rates']['worst_lookalike']:.4f} "
                    f"latency {o['latency_h']}; FRAUDAR R {f['user']['recall']:.2f} P {f['user']['precision']:.2f}"
                )
    out = {"cells": results, "seeds": seeds, "quick": quick, "full": full,
           "seconds": time.perf_counter() - started}  # fmt: skip
    out["goals"] = summarise(out)
    axes = per_axis(results)
    out["per_axis"] = axes
    for line in _axis_lines(axes):
        progress(line)
    return out


def _worst(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None], *, low: bool) -> Any:
    values = [(get(r), r["camouflage"]) for r in rows]
    present = [(v, name) for v, name in values if v is not None]
    if not present:
        return None, None
    return min(present) if low else max(present)


def _metric(side: str, metric: str) -> Callable[[dict[str, Any]], float]:
    def get(row: dict[str, Any]) -> float:
        return float(row[side]["user"][metric])

    return get


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, each judged on its worst cell (no pooling)."""
    cells = results["cells"]
    groups = {
        "user recall, >= 200 accounts, density >= 0.05": (
            [c for c in cells if c["bots"] >= 200 and c["density"] >= 0.05], "recall", 0.90),
        "user recall, >= 200 accounts, density 0.02": (
            [c for c in cells if c["bots"] >= 200 and c["density"] == 0.02], "recall", 0.75),
        "user precision, every cell": (cells, "precision", 0.95),
    }  # fmt: skip
    out: dict[str, Any] = {}
    for name, (rows, metric, target) in groups.items():
        if not rows:
            continue
        ours, where = _worst(rows, _metric("ours", metric), low=True)
        peer, _ = _worst(rows, _metric("fraudar", metric), low=True)
        mean = float(np.mean([r["ours"]["user"][metric] for r in rows]))
        out[name] = {"target": target, "ours_min": ours, "ours_mean": mean, "worst_cell": where,
                     "fraudar_best_block_min": peer, "cells": len(rows), "met": ours >= target}  # fmt: skip
    look, where = _worst(cells, lambda r: r["ours"]["flag_rates"]["worst_lookalike"], low=False)
    peer, _ = _worst(cells, lambda r: r["fraudar"]["flag_rates"]["worst_lookalike"], low=False)
    out["look-alike accounts flagged (worst kind)"] = {
        "target": 0.001, "ours_max": look, "worst_cell": where, "fraudar_union_max": peer,
        "met": look <= 0.001, "cells": len(cells)}  # fmt: skip
    org, where = _worst(cells, lambda r: r["ours"]["flag_rates"]["organic"], low=False)
    peer, _ = _worst(cells, lambda r: r["fraudar"]["flag_rates"]["organic"], low=False)
    out["organic accounts flagged"] = {"target": 0.001, "ours_max": org, "worst_cell": where,
                                       "fraudar_union_max": peer, "met": org <= 0.001, "cells": len(cells)}  # fmt: skip
    dense = [c for c in cells if c["density"] >= 0.1]
    latencies = [c["ours"]["latency_h"] for c in dense]
    caught = [x for x in latencies if x is not None]
    out["alert latency (h), density >= 0.1"] = {
        "target": 6.0, "ours_max": max(caught) if caught else None,
        "ours_median": float(np.median(caught)) if caught else None, "missed": len(latencies) - len(caught),
        "met": bool(caught) and max(caught) <= 6.0 and len(caught) == len(latencies), "cells": len(dense),
    }  # fmt: skip
    return out


def per_axis(cells: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean recall, precision and look-alike flag rate over the cells of each axis (base included)."""
    out: dict[str, dict[str, float]] = {}
    base = [c for c in cells if c["axis"] == "base"]
    for axis in dict.fromkeys(c["axis"] for c in cells):
        rows = [c for c in cells if c["axis"] == axis] + ([] if axis == "base" else base)
        out[axis] = {
            "cells": float(len(rows)),
            "ours_recall": float(np.mean([r["ours"]["user"]["recall"] for r in rows])),
            "ours_precision": float(np.mean([r["ours"]["user"]["precision"] for r in rows])),
            "ours_worst_lookalike": float(np.mean([r["ours"]["flag_rates"]["worst_lookalike"] for r in rows])),
            "fraudar_recall": float(np.mean([r["fraudar"]["user"]["recall"] for r in rows])),
            "fraudar_precision": float(np.mean([r["fraudar"]["user"]["precision"] for r in rows])),
        }
    return out


def _axis_lines(axes: dict[str, dict[str, float]]) -> list[str]:
    lines = ["mean per axis (with the base cell): ours recall / precision / look-alikes flagged | FRAUDAR R / P"]
    for axis, m in axes.items():
        lines.append(
            f"  {axis:18s} ({m['cells']:.0f} cells) {m['ours_recall']:.2f} / {m['ours_precision']:.2f} / "
            f"{m['ours_worst_lookalike']:.4f} | {m['fraudar_recall']:.2f} / {m['fraudar_precision']:.2f}"
        )
    return lines


__all__ = ["BASE", "GRID", "QUICK", "Cell", "per_axis", "run_cell", "run_fraud", "summarise"]
