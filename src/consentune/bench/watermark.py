"""``consentune bench watermark``: recovery per transformation, false attribution, audibility, on real music.

Clips come from the real-music corpus (``/work/corpus/manifest.tsv`` by default, or
``CONSENTUNE_CORPUS``): each track gives 34-s excerpts at 10 s, 50 s, 90 s, … (a fixed rule,
chosen before any result was seen), taken round-robin across the tracks in a seed-shuffled
order, so that a run of N clips spreads over as many tracks as possible and each seed starts
on different ones. Without the corpus the demo synthesizer is used and
the results say so. Each excerpt is marked with a random payload, cropped to 30 s at a random
offset off the mark's grid, transformed and detected. Unmarked crops and marked crops read
with another key count as false attributions if anything is detected; the highest sync score
they reach shows how far chance stays below the threshold. Decoding and lossy codecs run
through ``ffmpeg`` at exact bit rates (to raw float, so no decoder is imported here); clips
run in worker processes, and the run stops cleanly at ``max_minutes``.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly
from scipy.stats import beta

from consentune.demo.synth import STYLES, SongSpec, encode, synthesize
from consentune.errors import InvalidInput
from consentune.shield.streammark import MarkedStream, PlainStream, TrackPcm
from consentune.shield.watermark import (
    CANDIDATES,
    PAYLOAD_BYTES,
    SYNC_THRESHOLD,
    detect_with_peak,
    embed,
    segmental_snr_db,
    signal_to_mark_db,
)

RATE = 44100
CLIP_S = 30.0
EXCERPT_S = CLIP_S + 4.0
DEFAULT_CORPUS = Path(os.environ.get("CONSENTUNE_CORPUS", "/work/corpus/manifest.tsv"))
Audio = npt.NDArray[np.float32]
Transform = Callable[[Audio], tuple[Audio, int]]
TRANSFORMS = ("none", "mp3_128k", "opus_64k", "resample_48k", "speed_+3%", "speed_-3%")


@dataclass(frozen=True)
class Excerpt:
    """Where a clip comes from: a corpus file and start (s), or a synthesized song (``path`` empty)."""

    index: int
    path: str
    start_s: float
    seed: int


def run_watermark(
    *,
    clips: int,
    seed: int,
    progress: Callable[[str], object],
    corpus: Path = DEFAULT_CORPUS,
    workers: int = 2,
    max_minutes: float = 9.0,
) -> dict[str, Any]:
    """Recovery rate per transformation over up to ``clips`` 30-s clips, false attribution, audibility."""
    if shutil.which("ffmpeg") is None:
        raise InvalidInput("ffmpeg is not installed", hint="install ffmpeg (apt-get install ffmpeg)")
    excerpts, source = _plan(corpus, clips=clips, seed=seed)
    progress(f"{len(excerpts)} clips from {source}, {workers} workers, stopping at {max_minutes} min")
    began = time.monotonic()
    results: list[dict[str, Any]] = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done in pool.imap_unordered(_clip, excerpts):
            results.append(done)
            if len(results) % 10 == 0 or len(results) == len(excerpts):
                progress(f"{len(results)}/{len(excerpts)} clips, {time.monotonic() - began:.0f} s")
            if time.monotonic() - began > 60 * max_minutes:
                progress(f"time budget reached after {len(results)} clips")
                pool.terminate()
                break
    summary = _summarize(results)
    summary.update(source=source, clips_planned=len(excerpts), wall_s=round(time.monotonic() - began, 1))
    return summary


def _plan(corpus: Path, *, clips: int, seed: int) -> tuple[list[Excerpt], str]:
    if not corpus.is_file():
        plan = [Excerpt(i, "", 0.0, seed * 1000 + i) for i in range(clips)]
        return plan, f"demo synthesizer ({corpus} not found)"
    with corpus.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if Path(r["path"]).is_file()]
    rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]  # each seed starts elsewhere
    per_track = [
        [(r["path"], start) for start in np.arange(10.0, float(r["duration_s"]) - EXCERPT_S, 40.0)] for r in rows
    ]
    ordered = [track[k] for k in range(max(map(len, per_track), default=0)) for track in per_track if k < len(track)]
    plan = [Excerpt(i, path, float(start), seed * 1000 + i) for i, (path, start) in enumerate(ordered[:clips])]
    tracks = len({e.path for e in plan})
    return plan, f"{corpus} ({tracks} tracks, {len(ordered)} excerpts available)"


def _clip(excerpt: Excerpt) -> dict[str, Any]:
    """Everything measured on one clip (runs in a worker process)."""
    rng = np.random.default_rng(excerpt.seed)
    key, wrong_key, payload = rng.bytes(32), rng.bytes(32), rng.bytes(PAYLOAD_BYTES)
    song = _load(excerpt)
    marked = embed(song, RATE, payload, key)
    overall, in_band = signal_to_mark_db(song, marked, RATE)
    start = int(rng.uniform(0.0, EXCERPT_S - CLIP_S) * RATE)
    crop = marked[start : start + int(CLIP_S * RATE)]
    out: dict[str, Any] = {"clip": excerpt.index, "path": excerpt.path, "start_s": excerpt.start_s}
    out.update(snr_db=overall, in_band_snr_db=in_band, segmental_snr_db=segmental_snr_db(song, marked, RATE))
    out["rms_dbfs"] = float(10 * np.log10(np.mean(song.astype(np.float64) ** 2) + 1e-20))
    recovered, wrong, z_found, detect_s = {}, 0, [], []
    for name, transform in _transforms().items():
        samples, rate = transform(crop)
        t0 = time.process_time()
        found, _peak = detect_with_peak(samples, rate, key)
        detect_s.append(time.process_time() - t0)
        recovered[name] = found is not None and found.payload == payload
        wrong += found is not None and found.payload != payload
        if found is not None:
            z_found.append(found.confidence)
    unmarked, unmarked_peak = detect_with_peak(song[start : start + int(CLIP_S * RATE)], RATE, key)
    other_key, other_peak = detect_with_peak(crop, RATE, wrong_key)
    out.update(recovered=recovered, wrong_payloads=wrong, z_found=z_found, detect_cpu_s=detect_s)
    out["false_detections"] = (unmarked is not None) + (other_key is not None)
    out["false_peaks"] = [unmarked_peak, other_peak]
    return out


def _summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    if n == 0:
        raise InvalidInput("no clip finished within the time budget", hint="raise --max-minutes")
    recovered = {name: sum(r["recovered"][name] for r in results) for name in TRANSFORMS}
    peaks = [p for r in results for p in r["false_peaks"]]
    misses = {name: [f"{r['path'] or 'synth'}@{r['start_s']:.0f}s" for r in results if not r["recovered"][name]]
              for name in TRANSFORMS}  # fmt: skip
    return {
        "clips": n,
        "clip_s": CLIP_S,
        "recovery_rate": {name: k / n for name, k in recovered.items()},
        "recovery_lower_95": {name: _lower_bound(k, n) for name, k in recovered.items()},
        "misses": {name: found for name, found in misses.items() if found},
        "wrong_payloads": sum(r["wrong_payloads"] for r in results),
        "false_detections": sum(r["false_detections"] for r in results),
        "false_trials": 2 * n,
        "false_sync_z_max": max(peaks),
        "false_sync_z_p99": float(np.percentile(peaks, 99)),
        "false_trials_over_threshold": sum(p >= SYNC_THRESHOLD for p in peaks),
        "false_attribution_bound_per_clip": CANDIDATES * 2.0**-32,
        "sync_threshold": SYNC_THRESHOLD,
        "sync_z_min_when_found": min((z for r in results for z in r["z_found"]), default=0.0),
        "signal_to_mark_db_min": min(r["snr_db"] for r in results),
        "signal_to_mark_db_median": float(np.median([r["snr_db"] for r in results])),
        "in_band_signal_to_mark_db_min": min(r["in_band_snr_db"] for r in results),
        "segmental_snr_db_min": min(r["segmental_snr_db"] for r in results),
        "segmental_snr_db_median": float(np.median([r["segmental_snr_db"] for r in results])),
        "detect_cpu_s_median": float(np.median([s for r in results for s in r["detect_cpu_s"]])),
        "per_clip": [
            {k: r[k] for k in ("path", "start_s", "snr_db", "segmental_snr_db", "rms_dbfs", "z_found", "false_peaks")}
            for r in sorted(results, key=lambda r: int(r["clip"]))
        ],
    }


def _lower_bound(successes: int, trials: int) -> float:
    """One-sided 95 % Clopper-Pearson lower bound on a success rate."""
    return 0.0 if successes == 0 else float(beta.ppf(0.05, successes, trials - successes + 1))


def _load(excerpt: Excerpt) -> Audio:
    if not excerpt.path:
        style = STYLES[excerpt.index % len(STYLES)]
        return synthesize(SongSpec(seed=excerpt.seed, duration_s=EXCERPT_S, style=style))
    command = ["ffmpeg", "-v", "error", "-ss", f"{excerpt.start_s:.3f}", "-t", f"{EXCERPT_S}", "-i", excerpt.path,
               "-f", "f32le", "-ac", "2", "-ar", str(RATE), "pipe:1"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2).copy()


def _transforms() -> dict[str, Transform]:
    return {
        "none": lambda x: (x, RATE),
        "mp3_128k": lambda x: _ffmpeg(x, codec="libmp3lame", bitrate="128k", container="mp3", rate=44100),
        "opus_64k": lambda x: _ffmpeg(x, codec="libopus", bitrate="64k", container="ogg", rate=48000),
        "resample_48k": lambda x: (resample_poly(x, 160, 147, axis=0).astype(np.float32), 48000),
        "speed_+3%": lambda x: (resample_poly(x, 100, 103, axis=0).astype(np.float32), RATE),
        "speed_-3%": lambda x: (resample_poly(x, 100, 97, axis=0).astype(np.float32), RATE),
    }


def _ffmpeg(x: Audio, *, codec: str, bitrate: str, container: str, rate: int) -> tuple[Audio, int]:
    """Encode at an exact bit rate and decode back to float32 stereo at ``rate`` Hz."""
    base = ["ffmpeg", "-v", "error", "-i", "pipe:0"]
    coded = subprocess.run(
        [*base, "-c:a", codec, "-b:a", bitrate, "-f", container, "pipe:1"],
        input=encode(x, RATE, format="wav"),
        capture_output=True,
        check=True,
    ).stdout
    raw = subprocess.run(
        [*base, "-f", "f32le", "-ac", "2", "-ar", str(rate), "pipe:1"], input=coded, capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2), rate


def run_serving(*, corpus: Path = DEFAULT_CORPUS, seconds: float = 240.0) -> dict[str, Any]:
    """What marking costs a server per stream, on one corpus track (or a synthesized one): CPU to cache the
    track's PCM, to serve the first 30 s (what a player's first request may fetch) and to serve it all;
    the peer is serving the unmarked bytes, which costs a slice."""
    excerpt = Excerpt(0, "", 0.0, 1)
    if corpus.is_file():
        with corpus.open(newline="") as handle:
            rows = [r for r in csv.DictReader(handle, delimiter="\t") if float(r["duration_s"]) >= seconds]
        excerpt = Excerpt(0, rows[0]["path"], 0.0, 1) if rows else excerpt
    t0 = time.process_time()
    song = _load_seconds(excerpt, seconds)
    pcm = TrackPcm.of(song, RATE)
    cache_s = time.process_time() - t0
    stream = MarkedStream(pcm=pcm, payload=bytes(PAYLOAD_BYTES), key=bytes(32), xmp=None)
    t0 = time.process_time()
    stream.read(0, int(stream.size * 30 / seconds))
    first_s = time.process_time() - t0
    t0 = time.process_time()
    MarkedStream(pcm=pcm, payload=bytes(PAYLOAD_BYTES), key=bytes(32), xmp=None).read(0, stream.size)
    whole_s = time.process_time() - t0
    plain = PlainStream(stream.read(0, stream.size), "audio/wav")
    t0 = time.process_time()
    plain.read(0, plain.size)
    plain_s = time.process_time() - t0
    return {
        "track": excerpt.path or "synthesized",
        "track_s": seconds,
        "pcm_cache_cpu_s": round(cache_s, 3),
        "pcm_cache_mb": round(pcm.nbytes / 2**20, 1),
        "first_30s_cpu_s": round(first_s, 3),
        "whole_track_cpu_s": round(whole_s, 3),
        "cpu_share_of_real_time": round(whole_s / seconds, 4),
        "unmarked_whole_track_cpu_s": round(plain_s, 4),
        "stream_kbit_s": round(stream.size * 8 / seconds / 1000, 1),
    }


def _load_seconds(excerpt: Excerpt, seconds: float) -> Audio:
    if not excerpt.path:
        return synthesize(SongSpec(seed=1, duration_s=seconds, style="pop"))
    command = ["ffmpeg", "-v", "error", "-t", f"{seconds}", "-i", excerpt.path, "-f", "f32le", "-ac", "2",
               "-ar", str(RATE), "pipe:1"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2).copy()
