"""``consentune bench identify``: accuracy, false matches and cost on any manifest of real music.

Protocol (the issue's, self-contained): the manifest's tracks are shuffled
with the seed; the first ``n_index`` are indexed, the rest are distractors.
For each excerpt length, ``n_queries`` excerpts are drawn from indexed
tracks and every condition is rendered from the same excerpts; ``n_negatives``
clean excerpts come from distractors.  Everything goes through the real
service: tracks are ingested, only the indexed ones get ``identify``
consent (the distractors' refusal keeps them out of the index, through
the gate), queries are identified through ``IdentifyService.identify``
(gate decode included in the CPU time).  audfprint runs on the same
decoded audio when installed.  The 10x test adds, per indexed track, nine
copies resampled far outside the search range (0.76-1.30x) built by scaling
the track's peak map, and re-runs a subset of conditions on both indexes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from consentune.bench.identify_peer import PEER_SR, AudfprintPeer, load_peer
from consentune.bench.identify_render import (
    CONDITIONS,
    Excerpt,
    ManifestTrack,
    check_tools,
    cut,
    decode_file,
    draw_excerpts,
    read_manifest,
    render,
)
from consentune.config import Settings
from consentune.consent.terms import DEFAULT_KINDS
from consentune.identify import SAMPLE_RATE, Match, MmapIndex, TrackPostings, identify_samples
from consentune.identify.triplets import BINS_PER_OCTAVE, HOP, REFERENCE, Peaks, fingerprint, triplet_hashes
from consentune.service import Consentune, open_service
from consentune.types import IDENTIFY, Artist, PurposeKind, TrackId

ACTOR = "bench:identify"
QUOTED_AUDFPRINT = {  # the audfprint figures (default settings, same protocol and corpus), 10 s / 5 s
    "clean": (99.5, 97.5),
    "mp3_32k": (99.5, 87.5),
    "opus_16k": (95.0, 64.5),
    "white_snr10": (88.0, 61.0),
    "pink_snr10": (81.0, 61.0),
    "white_snr0": (44.0, 32.0),
    "pink_snr0": (41.0, 25.0),
    "speed_p5": (0.0, 0.0),
    "tempo_p5": (46.0, 21.0),
    "pitch_p1st": (7.5, 1.0),
    "false_match": (4.0, 1.0),
}
GOALS = {  # top-1 accuracy % at 10 s / 5 s
    "clean": (99.5, 97.0),
    "mp3_32k": (99.5, 97.0),
    "opus_16k": (99.5, 97.0),
    "white_snr10": (98.0, 92.0),
    "pink_snr10": (98.0, 92.0),
    "white_snr0": (85.0, 70.0),
    "pink_snr0": (85.0, 70.0),
    "speed_p5": (95.0, 85.0),
    "speed_m5": (95.0, 85.0),
    "tempo_p5": (95.0, 85.0),
    "pitch_p1st": (85.0, 70.0),
    "pitch_m1st": (85.0, 70.0),
}
COST_GOALS = {"query_cpu_s_10s": 0.05, "build_cpu_s_per_audio_h": 12.0, "index_mb_per_audio_h": 1.0}
TENX_CONDITIONS = ("clean", "opus_16k", "white_snr0", "speed_p5", "tempo_p5", "pitch_p1st")
COPY_FACTORS = (0.76, 0.80, 0.84, 0.88, 1.12, 1.16, 1.20, 1.25, 1.30)


def run_identify(
    *,
    manifest: Path,
    quick: bool = False,
    seed: int = 2026,
    group: str | None = None,
    peer: bool = True,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Run the whole protocol; returns a JSON-ready dict (see the module docstring)."""
    check_tools()
    tracks = read_manifest(manifest, group=group)
    n_index, n_queries, n_negatives = (30, 30, 30) if quick else (100, 200, 100)
    if len(tracks) <= n_index:
        n_index = max(1, len(tracks) * 3 // 4)
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(tracks))]
    indexed, distractors = sorted(order[:n_index]), sorted(order[n_index:])
    lengths = (10.0, 5.0)
    plan = {
        length: (
            draw_excerpts(tracks, indexed, n=n_queries, length_s=length, rng=rng),
            draw_excerpts(tracks, distractors, n=n_negatives, length_s=length, rng=rng) if distractors else [],
        )
        for length in lengths
    }
    modules = load_peer() if peer else None
    results: dict[str, Any] = {
        "seed": seed,
        "quick": quick,
        "manifest_tracks": len(tracks),
        "indexed_tracks": len(indexed),
        "distractor_tracks": len(distractors),
        "queries_per_condition": n_queries,
        "negatives": n_negatives,
        "peer": "audfprint2 (measured in this run)" if modules else "audfprint (quoted from the issue)",
    }
    with tempfile.TemporaryDirectory(prefix="consentune-bench-identify-") as tmp:
        settings = Settings(
            home=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", identify_at_ingest=False
        )
        svc = open_service(settings)
        try:
            ids = _ingest(svc, tracks, indexed, progress)
            results["build"] = _build(svc, [ids[i] for i in indexed], progress)
            audfp = _peer_build(svc, modules, [ids[i] for i in indexed], progress) if modules else None
            results["peer_build"] = audfp[1] if audfp else None
            excerpts = _excerpts(tracks, plan, seed, progress)
            truth = {i: ids[i] for i in range(len(tracks)) if i in ids}
            names = {ids[i]: str(tracks[i].path) for i in ids}
            results["runs"] = _queries(svc, excerpts, truth, names, audfp[0] if audfp else None, seed, progress)
            results["tenx"] = _tenx(svc, [ids[i] for i in indexed], excerpts, truth, seed, Path(tmp), progress)
        finally:
            svc.close()
    results["summary"] = _summary(results)
    return results


# -- setup -------------------------------------------------------------------
def _ingest(
    svc: Consentune, tracks: list[ManifestTrack], indexed: list[int], progress: Callable[[str], object]
) -> dict[int, TrackId]:
    """Ingest every track; only the indexed ones get `identify` consent (a track-level allow)."""
    kinds = {str(p): k.value for p, k in DEFAULT_KINDS.items()} | {IDENTIFY: PurposeKind.OPT_OUT.value}
    svc.consent.publish_terms(kinds, summary="bench: identify optional", actor=ACTOR)
    artists: dict[str, Artist] = {}
    ids: dict[int, TrackId] = {}
    progress(f"ingesting {len(tracks)} tracks")
    for i, track in enumerate(tracks):
        if track.package not in artists:
            artist = svc.catalog.add_artist(track.package, actor=ACTOR)
            svc.consent.set(artist, purpose=IDENTIFY, allow=False, actor=ACTOR)
            artists[track.package] = artist
        data = track.path.read_bytes()
        ids[i] = svc.catalog.ingest(
            data, filename=track.path.name, artist=artists[track.package], title=str(i), actor=ACTOR
        ).track.id
    for i in indexed:
        svc.consent.set(artists[tracks[i].package], purpose=IDENTIFY, allow=True, actor=ACTOR, track=ids[i])
    return ids


def _build(svc: Consentune, track_ids: list[TrackId], progress: Callable[[str], object]) -> dict[str, Any]:
    progress(f"indexing {len(track_ids)} tracks through the gate")
    start, wall = time.process_time(), time.perf_counter()
    report = svc.identify.index_tracks(track_ids, actor=ACTOR)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    stats = svc.identify.stats()
    hours = report.audio_s / 3600
    decode_cpu = _decode_cpu(svc, track_ids[: max(1, len(track_ids) // 5)])
    return {
        "tracks": len(report.indexed),
        "audio_h": round(hours, 3),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cpu_s_per_audio_h": round(cpu / hours, 2),
        "decode_share": round(decode_cpu * len(track_ids) / max(1, len(track_ids) // 5) / cpu, 3),
        "hashes_per_s": round(stats.postings / report.audio_s, 1),
        "index_mb": round(stats.bytes_on_disk / 1e6, 3),
        "index_mb_per_audio_h": round(stats.bytes_on_disk / 1e6 / hours, 3),
    }


def _decode_cpu(svc: Consentune, track_ids: list[TrackId]) -> float:
    """CPU seconds to decode (and resample) a sample of the tracks through the gate alone."""
    grant = svc.gate.request(actor=ACTOR, purpose=IDENTIFY, tracks=track_ids)
    start = time.process_time()
    for handle in grant.allowed:
        svc.gate.decode_audio(handle, mono=True, target_sr=SAMPLE_RATE)
    return time.process_time() - start


def _peer_build(
    svc: Consentune, modules: Any, track_ids: list[TrackId], progress: Callable[[str], object]
) -> tuple[AudfprintPeer, dict[str, Any]]:
    progress("audfprint: indexing the same tracks")
    audfp = AudfprintPeer(modules)
    grant = svc.gate.request(actor=ACTOR, purpose=IDENTIFY, tracks=track_ids)
    start, seconds = time.process_time(), 0.0
    for handle in grant.allowed:
        samples, _ = svc.gate.decode_audio(handle, mono=True, target_sr=PEER_SR)
        seconds += samples.shape[0] / PEER_SR
        audfp.add(handle.track, samples)
    cpu = time.process_time() - start
    return audfp, {
        "cpu_s_per_audio_h": round(cpu / (seconds / 3600), 2),
        "table_mb": round(audfp.size_bytes() / 1e6, 2),
    }


def _excerpts(
    tracks: list[ManifestTrack],
    plan: dict[float, tuple[list[tuple[int, float]], list[tuple[int, float]]]],
    seed: int,
    progress: Callable[[str], object],
) -> dict[float, tuple[list[Excerpt], list[Excerpt]]]:
    """Decode each needed track once and cut its excerpts (int16, with 5 % extra for speed/tempo)."""
    needed = sorted({i for pos, neg in plan.values() for i, _ in (*pos, *neg)})
    progress(f"cutting excerpts from {len(needed)} tracks")
    cuts: dict[tuple[float, str, int], Excerpt] = {}
    for track in needed:
        audio = decode_file(tracks[track].path)
        for length, (pos, neg) in plan.items():
            for kind, items in (("pos", pos), ("neg", neg)):
                for n, (i, offset) in enumerate(items):
                    if i == track:
                        rng = np.random.default_rng([seed, int(length * 1000), n, 7 if kind == "pos" else 8])
                        start, samples = cut(audio, offset, length, rng)
                        truth = track if kind == "pos" else -1
                        cuts[(length, kind, n)] = Excerpt(truth, start, length, samples, tracks[track].path)
    return {
        length: (
            [cuts[(length, "pos", n)] for n in range(len(pos))],
            [cuts[(length, "neg", n)] for n in range(len(neg))],
        )
        for length, (pos, neg) in plan.items()
    }


# -- queries -----------------------------------------------------------------
def _queries(
    svc: Consentune,
    excerpts: dict[float, tuple[list[Excerpt], list[Excerpt]]],
    truth: dict[int, TrackId],
    names: dict[TrackId, str],
    audfp: AudfprintPeer | None,
    seed: int,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for length, (positives, negatives) in excerpts.items():
        label = f"{length:g}s"
        progress(f"{label}: {len(positives)} excerpts x {len(CONDITIONS)} conditions + {len(negatives)} negatives")
        per: dict[str, Any] = {}
        cpu: list[float] = []
        peer_cpu: list[float] = []
        jobs = [(c, n, e) for c in CONDITIONS for n, e in enumerate(positives)]
        jobs += [("negative", n, e) for n, e in enumerate(negatives)]
        for condition, n, excerpt in jobs:
            rng = np.random.default_rng([seed, int(length * 1000), n, ((*CONDITIONS, "negative")).index(condition)])
            data = render(condition, excerpt, rng)
            start = time.process_time()
            found = svc.identify.identify(data, actor=ACTOR, filename=f"q.{_ext(data)}")
            cpu.append(time.process_time() - start)
            row = per.setdefault(condition, {"n": 0, "ours": 0, "peer": 0, "scale_err": []})
            row["n"] += 1
            expected = truth.get(excerpt.track) if excerpt.track >= 0 else None
            top = found[0].track_id if found else None
            row["ours"] += (top == expected) if expected else (top is not None)
            if not expected and found:  # keep the evidence: is it shared material or a true false match?
                row.setdefault("false_matches", []).append(_evidence(excerpt, found[0], names))
            if expected and top == expected and condition.startswith(("speed", "tempo")):
                row["scale_err"].append(abs(found[0].time_scale - _true_scale(condition)))
            if audfp is not None:
                start = time.process_time()
                samples, _ = svc.gate.decode_upload(data, mono=True, target_sr=PEER_SR)
                name = audfp.match(samples)
                peer_cpu.append(time.process_time() - start)
                row["peer"] += (name == expected) if expected else (name is not None)
        runs[label] = {
            "conditions": {c: _rates(r, audfp is not None) for c, r in per.items()},
            "query_cpu_s_mean": round(statistics.fmean(cpu), 4),
            "query_cpu_s_median": round(statistics.median(cpu), 4),
            "peer_query_cpu_s_mean": round(statistics.fmean(peer_cpu), 4) if peer_cpu else None,
        }
    return runs


def _rates(row: dict[str, Any], with_peer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"n": row["n"], "ours_pct": round(100.0 * row["ours"] / row["n"], 2)}
    if "false_matches" in row:
        out["false_matches"] = row["false_matches"]
    if with_peer:
        out["peer_pct"] = round(100.0 * row["peer"] / row["n"], 2)
    if row["scale_err"]:
        out["time_scale_abs_err_median"] = round(statistics.median(row["scale_err"]), 4)
    return out


def _evidence(excerpt: Excerpt, match: Match, names: dict[TrackId, str]) -> dict[str, Any]:
    return {
        "query_source": str(excerpt.source),
        "query_offset_s": round(excerpt.offset_s, 2),
        "matched": names.get(TrackId(match.track_id), match.track_id),
        "score": match.score,
        "aligned": match.matched,
        "query_range_s": [match.query_start_s, match.query_end_s],
        "ref_range_s": [match.ref_start_s, match.ref_end_s],
        "time_scale": match.time_scale,
        "pitch_semitones": match.pitch_semitones,
    }


def _true_scale(condition: str) -> float:
    return {"speed_p5": 1.05, "speed_m5": 0.95, "tempo_p5": 1.05}[condition]


def _ext(data: bytes) -> str:
    return "ogg" if data[:4] == b"OggS" else "wav" if data[:4] == b"RIFF" else "mp3"


# -- 10x index -----------------------------------------------------------------
def _tenx(
    svc: Consentune,
    track_ids: list[TrackId],
    excerpts: dict[float, tuple[list[Excerpt], list[Excerpt]]],
    truth: dict[int, TrackId],
    seed: int,
    tmp: Path,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    progress(f"10x index: {len(COPY_FACTORS)} resampled copies of each indexed track")
    big = MmapIndex(tmp / "tenx")
    grant = svc.gate.request(actor=ACTOR, purpose=IDENTIFY, tracks=track_ids)
    for handle in grant.allowed:
        samples, _ = svc.gate.decode_audio(handle, mono=True, target_sr=SAMPLE_RATE)
        peaks, hashes = fingerprint(samples)
        frames = int(samples.shape[0] // HOP) + 1
        items = [TrackPostings(handle.track, hashes.key, np.rint(hashes.t).astype(np.uint32), frames)]
        for factor in COPY_FACTORS:
            items.append(_copy(f"{handle.track}@{factor}", peaks, factor, frames))
        big.add(items)
    small = svc.identify.index
    positives, negatives = excerpts[10.0]
    rows = {"ours_1x": 0, "ours_10x": 0, "n": 0, "false_1x": 0, "false_10x": 0, "neg": 0}
    cpu: dict[str, list[float]] = {"1x": [], "10x": []}
    jobs = [(c, n, e) for c in TENX_CONDITIONS for n, e in enumerate(positives)]
    jobs += [("negative", n, e) for n, e in enumerate(negatives)]
    for condition, n, excerpt in jobs:
        rng = np.random.default_rng([seed, 10_000, n, ((*CONDITIONS, "negative")).index(condition)])
        samples, _ = svc.gate.decode_upload(render(condition, excerpt, rng), mono=True, target_sr=SAMPLE_RATE)
        expected = truth.get(excerpt.track) if excerpt.track >= 0 else None
        for label, index in (("1x", small), ("10x", big)):
            start = time.process_time()
            found = identify_samples(samples, index)
            cpu[label].append(time.process_time() - start)
            top = found[0].track_id if found else None
            if expected:
                rows[f"ours_{label}"] += top == expected
            else:
                rows[f"false_{label}"] += top is not None
        rows["n" if expected else "neg"] += 1
    stats = big.stats()
    return {
        "conditions": list(TENX_CONDITIONS),
        "tracks_1x": small.track_count(),
        "tracks_10x": stats.tracks,
        "postings_10x": stats.postings,
        "accuracy_1x_pct": round(100.0 * rows["ours_1x"] / max(1, rows["n"]), 2),
        "accuracy_10x_pct": round(100.0 * rows["ours_10x"] / max(1, rows["n"]), 2),
        "false_match_1x_pct": round(100.0 * rows["false_1x"] / max(1, rows["neg"]), 2),
        "false_match_10x_pct": round(100.0 * rows["false_10x"] / max(1, rows["neg"]), 2),
        "match_cpu_s_1x": round(statistics.fmean(cpu["1x"]), 4),
        "match_cpu_s_10x": round(statistics.fmean(cpu["10x"]), 4),
        "cpu_ratio": round(statistics.fmean(cpu["10x"]) / statistics.fmean(cpu["1x"]), 2),
    }


def _copy(name: str, peaks: Peaks, factor: float, frames: int) -> TrackPostings:
    """Postings of the track resampled to play ``factor`` times faster, from its scaled peak map."""
    scaled = Peaks(
        (peaks.t / factor).astype(np.float32),
        (peaks.f + BINS_PER_OCTAVE * np.log2(factor)).astype(np.float32),
        peaks.level,
    )
    keep = (scaled.f >= 0) & (scaled.f <= 255)
    scaled = Peaks(scaled.t[keep], scaled.f[keep], scaled.level[keep])
    hashes = triplet_hashes(scaled, REFERENCE[1])
    return TrackPostings(name, hashes.key, np.rint(hashes.t).astype(np.uint32), int(frames / factor) + 1)


# -- summary -------------------------------------------------------------------
def _summary(results: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for label, column in (("10s", 0), ("5s", 1)):
        conditions = results["runs"][label]["conditions"]
        for name, target in GOALS.items():
            value = conditions[name]["ours_pct"]
            goals[f"{name} {label}"] = {"value": value, "target": f">={target[column]}", "met": value >= target[column]}
        false = conditions["negative"]["ours_pct"]
        goals[f"false matches {label}"] = {"value": false, "target": "<=0.5", "met": false <= 0.5}
    cpu = results["runs"]["10s"]["query_cpu_s_mean"]
    goals["query CPU s per 10 s excerpt"] = {"value": cpu, "target": "<=0.05", "met": cpu <= 0.05}
    build = results["build"]["cpu_s_per_audio_h"]
    goals["index build CPU-s per audio h"] = {"value": build, "target": "<=12", "met": build <= 12}
    size = results["build"]["index_mb_per_audio_h"]
    goals["index MB per audio h"] = {"value": size, "target": "<=1", "met": size <= 1}
    tenx = results["tenx"]
    drop = tenx["accuracy_1x_pct"] - tenx["accuracy_10x_pct"]
    goals["10x index: accuracy drop (points)"] = {"value": round(drop, 2), "target": "<=1", "met": drop <= 1}
    goals["10x index: match CPU ratio"] = {"value": tenx["cpu_ratio"], "target": "<=2", "met": tenx["cpu_ratio"] <= 2}
    return goals


__all__ = ["GOALS", "QUOTED_AUDFPRINT", "run_identify"]
