"""``consentune bench mix``: tracklists of built DJ mixes, scored against their truth.

Protocol (rules fixed before any result was looked at):

* The manifest's tracks of 60-600 s are shuffled with the seed; ``n_index``
  are ingested with ``identify`` consent and indexed through the service,
  ``n_unknown`` others are ingested without it (so the gate keeps them out).
* Each mix (:mod:`consentune.bench.mix_build`, its own seed) draws from both
  pools, is encoded to MP3 (128 kbit/s) and decoded by the gate.
* Ours: the gate decode plus :func:`window_candidates` plus
  :func:`decode_timeline`, CPU-timed together (what
  ``IdentifyService.tracklist`` runs).  Peer, on the same windows: each
  window's top match at :data:`THRESHOLD`, equal neighbours joined, no decoder.
* Scoring, per mix: truth entries are indexed tracks played >= 30 s.  A
  reported known segment is a hit when a not-yet-hit truth entry of the same
  track overlaps it by at least half the shorter of the two; every other
  reported known segment is a false one (a track split in two counts one
  hit and one false).  Boundary error: |reported - true| for each hit's
  start and end, except the mix's own start and end; split by whether the
  neighbour across the boundary is indexed.  Unknown handling: a track not
  in the index counts as reported unknown when unknown segments cover at
  least half of its span.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from consentune.bench.identify_render import ManifestTrack, check_tools, read_manifest, wav_bytes
from consentune.bench.mix_build import MixParams, PlayedTrack, Signal, build_mix
from consentune.config import Settings
from consentune.consent.terms import DEFAULT_KINDS
from consentune.errors import InvalidInput
from consentune.identify import SAMPLE_RATE, THRESHOLD, Match, MixSegment
from consentune.identify.mix import HOP_S, WINDOW_S, decode_timeline, window_candidates
from consentune.service import Consentune, open_service
from consentune.types import IDENTIFY, Artist, PurposeKind, TrackId

ACTOR = "bench:identify-mix"
BUILD_SR = 16_000  # Hz: mixes are built and encoded at this rate
MIN_PLAYED_S = 30.0
BOUNDARY_TOL_S = 5.0
GOALS = {"precision": 0.95, "recall": 0.90, "boundary_within_5s": 0.90, "cpu_s_per_mix_h": 60.0}


def run_mix_bench(
    *,
    manifest: Path,
    mixes: int = 3,
    seed: int = 2026,
    quick: bool = False,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Build ``mixes`` mixes, tracklist each with ours and the peer; returns a JSON-ready dict."""
    check_tools()
    tracks = [t for t in read_manifest(manifest, group=None) if 60.0 <= t.duration_s <= 600.0]
    n_index, n_unknown = (16, 6) if quick else (32, 12)
    if len(tracks) < 8:
        raise InvalidInput(f"manifest {manifest} has {len(tracks)} tracks of 60-600 s", hint="use a larger corpus")
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(tracks))]
    n_index = min(n_index, len(tracks) * 3 // 4)
    pool = order[: n_index + n_unknown]
    indexed = set(order[:n_index])
    params = MixParams(duration_s=(600.0, 900.0)) if quick else MixParams()
    results: dict[str, Any] = {
        "seed": seed,
        "quick": quick,
        "indexed_tracks": n_index,
        "unknown_pool": len(pool) - n_index,
        "window_s": WINDOW_S,
        "hop_s": HOP_S,
        "threshold": THRESHOLD,
        "peer": "per-window top-1, neighbours joined (no decoder)",
    }
    with tempfile.TemporaryDirectory(prefix="consentune-bench-mix-") as tmp:
        settings = Settings(
            home=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", identify_at_ingest=False,
            max_duration_s=4000.0,
        )  # fmt: skip
        svc = open_service(settings)
        try:
            ids = _ingest(svc, tracks, pool, indexed, progress)
            report = svc.identify.index_tracks([ids[i] for i in sorted(indexed)], actor=ACTOR)
            results["index_audio_h"] = round(report.audio_s / 3600, 3)
            sources = {i: _decode(tracks[i].path) for i in pool}
            results["mixes"] = [_one_mix(svc, sources, indexed, ids, n, seed, params, progress) for n in range(mixes)]
        finally:
            svc.close()
    results["summary"] = _summary(results["mixes"])
    return results


def _ingest(
    svc: Consentune,
    tracks: list[ManifestTrack],
    pool: list[int],
    indexed: set[int],
    progress: Callable[[str], object],
) -> dict[int, TrackId]:
    kinds = {str(p): k.value for p, k in DEFAULT_KINDS.items()} | {IDENTIFY: PurposeKind.OPT_OUT.value}
    svc.consent.publish_terms(kinds, summary="bench: identify optional", actor=ACTOR)
    artists: dict[str, Artist] = {}
    ids: dict[int, TrackId] = {}
    progress(f"ingesting {len(pool)} tracks ({len(indexed)} to index)")
    for i in pool:
        track = tracks[i]
        if track.package not in artists:
            artists[track.package] = svc.catalog.add_artist(track.package, actor=ACTOR)
            svc.consent.set(artists[track.package], purpose=IDENTIFY, allow=False, actor=ACTOR)
        ids[i] = svc.catalog.ingest(
            track.path.read_bytes(), filename=track.path.name, artist=artists[track.package], title=track.path.stem,
            actor=ACTOR,
        ).track.id  # fmt: skip
        if i in indexed:
            svc.consent.set(artists[track.package], purpose=IDENTIFY, allow=True, actor=ACTOR, track=ids[i])
    return ids


def _one_mix(
    svc: Consentune,
    sources: dict[int, Signal],
    indexed: set[int],
    ids: dict[int, TrackId],
    n: int,
    seed: int,
    params: MixParams,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    numbers = sorted(sources)
    rng = np.random.default_rng([seed, 19, n])
    audio, played = build_mix(
        [sources[i] for i in numbers], [i in indexed for i in numbers], rate=BUILD_SR, rng=rng, params=params,
        stretch=_sox_tempo,
    )  # fmt: skip
    truth = [_renumber(p, numbers) for p in played]
    data = _mp3(audio)
    hours = audio.shape[0] / BUILD_SR / 3600
    progress(f"mix {n}: {hours * 60:.1f} min, {len(truth)} tracks, {len(data) / 1e6:.1f} MB MP3")
    start = time.process_time()
    samples, _ = svc.gate.decode_upload(data, filename="mix.mp3", mono=True, target_sr=SAMPLE_RATE)
    candidates = window_candidates(samples, svc.identify.index)
    total_s = samples.shape[0] / SAMPLE_RATE
    ours = decode_timeline(candidates, total_s=total_s)
    cpu = time.process_time() - start
    peer = per_window_timeline(candidates, total_s=total_s)
    names = {ids[i]: i for i in ids}
    return {
        "minutes": round(hours * 60, 1),
        "tracks": len(truth),
        "unknown_tracks": sum(not p.indexed for p in truth),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_mix_h": round(cpu / hours, 2),
        "ours": score_timeline(truth, _by_source(ours, names), total_s=total_s),
        "peer": score_timeline(truth, _by_source(peer, names), total_s=total_s),
        "truth": [_played_json(p) for p in truth],
        "timeline": [_segment_json(s, names) for s in ours],
    }


def per_window_timeline(candidates: list[list[Match]], *, total_s: float) -> list[MixSegment]:
    """The peer: each window's best match at THRESHOLD (else unknown); equal neighbours joined."""
    segments: list[MixSegment] = []
    for w, found in enumerate(candidates):
        top = found[0] if found and found[0].score >= THRESHOLD else None
        track = top.track_id if top else None
        start, end = w * HOP_S, min(total_s, w * HOP_S + WINDOW_S)
        if segments and segments[-1].track_id == track:
            last = segments[-1]
            segments[-1] = MixSegment(track, last.start_s, end, None, None, None, None,
                                      max(last.confidence, top.score if top else 0.0), last.windows + 1)  # fmt: skip
        else:
            if segments:  # consecutive windows overlap: the switch is where the new window starts plus half a hop
                cut = start + (WINDOW_S - HOP_S) / 2
                last = segments[-1]
                segments[-1] = MixSegment(last.track_id, last.start_s, cut, None, None, None, None,
                                          last.confidence, last.windows)  # fmt: skip
                start = cut
            segments.append(MixSegment(track, start, end, None, None, None, None, top.score if top else 0.0, 1))
    return segments


def score_timeline(truth: Sequence[PlayedTrack], reported: Sequence[tuple[int | None, MixSegment]], *,
                   total_s: float) -> dict[str, Any]:  # fmt: skip
    """Precision, recall, boundary errors and unknown handling under the module docstring's rules."""
    relevant = [p for p in truth if p.indexed and p.played_s >= MIN_PLAYED_S]
    ignored = {p.source for p in truth if p.indexed and p.played_s < MIN_PLAYED_S}
    hit: set[int] = set()
    errors: dict[str, list[float]] = {"known_neighbour": [], "unknown_neighbour": []}
    false = 0
    for source, seg in reported:
        if source is None:
            continue
        match = _best_truth(seg, source, relevant, hit)
        if match is None:
            false += source not in ignored
            continue
        hit.add(id(match))
        _boundary_errors(match, seg, truth, total_s, errors)
    known = sum(1 for s, _ in reported if s is not None and s not in ignored)
    all_errors = errors["known_neighbour"] + errors["unknown_neighbour"]
    unknown_truth = [p for p in truth if not p.indexed and p.played_s >= MIN_PLAYED_S]
    unknown_ok = sum(_unknown_cover(p, reported) >= 0.5 for p in unknown_truth)
    return {
        "reported": known,
        "hits": len(hit),
        "false": false,
        "relevant": len(relevant),
        "precision": round(len(hit) / known, 4) if known else 1.0,
        "recall": round(len(hit) / len(relevant), 4) if relevant else 1.0,
        "boundary_errors_s": [round(e, 2) for e in all_errors],
        "boundary_errors_known_neighbour_s": [round(e, 2) for e in errors["known_neighbour"]],
        "boundary_errors_unknown_neighbour_s": [round(e, 2) for e in errors["unknown_neighbour"]],
        "unknown_tracks": len(unknown_truth),
        "unknown_reported_unknown": unknown_ok,
    }


def _best_truth(seg: MixSegment, source: int, relevant: list[PlayedTrack], hit: set[int]) -> PlayedTrack | None:
    best, best_overlap = None, 0.0
    for p in relevant:
        if p.source != source or id(p) in hit:
            continue
        overlap = min(p.end_s, seg.end_s) - max(p.start_s, seg.start_s)
        if overlap >= 0.5 * min(p.played_s, seg.end_s - seg.start_s) and overlap > best_overlap:
            best, best_overlap = p, overlap
    return best


def _boundary_errors(
    p: PlayedTrack, seg: MixSegment, truth: Sequence[PlayedTrack], total_s: float, out: dict[str, list[float]]
) -> None:
    at = list(truth).index(p)
    if p.start_s > 0.0:
        side = "known_neighbour" if truth[at - 1].indexed else "unknown_neighbour"
        out[side].append(abs(seg.start_s - p.start_s))
    if at + 1 < len(truth) and p.end_s < total_s - 1.0:
        side = "known_neighbour" if truth[at + 1].indexed else "unknown_neighbour"
        out[side].append(abs(seg.end_s - p.end_s))


def _unknown_cover(p: PlayedTrack, reported: Sequence[tuple[int | None, MixSegment]]) -> float:
    covered = sum(
        max(0.0, min(p.end_s, s.end_s) - max(p.start_s, s.start_s)) for source, s in reported if source is None
    )
    return covered / p.played_s


def _summary(mixes: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for who in ("ours", "peer"):
        rows = [m[who] for m in mixes]
        hits, reported, relevant = (sum(r[k] for r in rows) for k in ("hits", "reported", "relevant"))
        errors = [e for r in rows for e in r["boundary_errors_s"]]
        unknown = sum(r["unknown_tracks"] for r in rows)
        out[who] = {
            "precision": round(hits / reported, 4) if reported else 1.0,
            "recall": round(hits / relevant, 4) if relevant else 1.0,
            "boundary_median_s": round(statistics.median(errors), 2) if errors else None,
            "boundary_p90_s": round(float(np.percentile(errors, 90)), 2) if errors else None,
            "boundary_within_5s": round(sum(e <= BOUNDARY_TOL_S for e in errors) / len(errors), 4) if errors else None,
            "boundary_within_5s_known_neighbour": _share(_all(rows, "boundary_errors_known_neighbour_s")),
            "boundary_within_5s_unknown_neighbour": _share(_all(rows, "boundary_errors_unknown_neighbour_s")),
            "unknown_reported_unknown": f"{sum(r['unknown_reported_unknown'] for r in rows)}/{unknown}",
        }  # fmt: skip
    hours = sum(m["minutes"] for m in mixes) / 60
    out["ours"]["cpu_s_per_mix_h"] = round(sum(m["cpu_s"] for m in mixes) / hours, 2) if hours else None
    out["mix_hours"] = round(hours, 2)
    return out


def _all(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [e for r in rows for e in r[key]]


def _share(errors: list[float]) -> float | None:
    return round(sum(e <= BOUNDARY_TOL_S for e in errors) / len(errors), 4) if errors else None


def _by_source(segments: list[MixSegment], names: dict[TrackId, int]) -> list[tuple[int | None, MixSegment]]:
    return [(names[TrackId(s.track_id)] if s.track_id else None, s) for s in segments]


def _renumber(p: PlayedTrack, numbers: list[int]) -> PlayedTrack:
    return PlayedTrack(numbers[p.source], p.indexed, p.start_s, p.end_s, p.source_start_s, p.factor, p.mode)


def _played_json(p: PlayedTrack) -> dict[str, Any]:
    return {"source": p.source, "indexed": p.indexed, "start_s": p.start_s, "end_s": p.end_s,
            "factor": round(p.factor, 4), "mode": p.mode}  # fmt: skip


def _segment_json(s: MixSegment, names: dict[TrackId, int]) -> dict[str, Any]:
    return {"source": names[TrackId(s.track_id)] if s.track_id else None, "start_s": s.start_s, "end_s": s.end_s,
            "time_scale": s.time_scale, "confidence": s.confidence}  # fmt: skip


def _decode(path: Path) -> Signal:
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-ac", "1", "-ar", str(BUILD_SR), "-f", "f32le", "-"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0 or not done.stdout:
        raise InvalidInput(f"ffmpeg cannot decode {path}", hint="check the manifest entry")
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


def _sox_tempo(samples: Signal, factor: float, rate: int) -> Signal:
    """Tempo change with the pitch kept (sox WSOLA), as a DJ's key lock does."""
    with tempfile.TemporaryDirectory(prefix="consentune-mix-") as tmp:
        src, out = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        src.write_bytes(wav_bytes(samples, rate))
        subprocess.run(["sox", str(src), str(out), "tempo", "-m", f"{factor:.5f}"], check=True, capture_output=True)
        with wave.open(str(out), "rb") as handle:
            raw = handle.readframes(handle.getnframes())
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / np.float32(32767.0)


def _mp3(samples: Signal) -> bytes:
    with tempfile.TemporaryDirectory(prefix="consentune-mix-") as tmp:
        src, out = Path(tmp) / "mix.wav", Path(tmp) / "mix.mp3"
        src.write_bytes(wav_bytes(samples, BUILD_SR))
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(src), "-c:a", "libmp3lame", "-b:a", "128k", str(out)]
        subprocess.run(cmd, check=True, capture_output=True)
        return out.read_bytes()


__all__ = ["GOALS", "per_window_timeline", "run_mix_bench", "score_timeline"]
