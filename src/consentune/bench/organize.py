"""``consentune bench organize``: descriptors against rendered ground truth, cost, similar-track speed.

Ground truth: seeded MIDI pieces (known lead instrument, tempo, key) rendered
with FluidSynth and a General MIDI soundfont, ingested and analysed through
the service exactly as an upload would be (gate decode, ``organize`` consent,
features stored).  Tempo counts as right within 4 % of the annotated tempo,
half or double (octave-tolerant, MIREX "Acc2"-style); keys are scored with the
MIREX weights.  Instruments: macro one-vs-rest ROC-AUC of a ridge probe on our
embedding, 5-fold cross-validated over the rendered pieces.  Similar tracks:
p95 query time over 100k synthetic clustered vectors, exact and HNSW.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from consentune.bench.midi import LEAD_INSTRUMENTS, Piece, piece_midi, random_piece
from consentune.bench.organize_dupes import TARGETS as DUPLICATE_TARGETS
from consentune.bench.organize_dupes import run_duplicates
from consentune.bench.organize_tags import run_tags
from consentune.config import Settings
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.errors import InvalidInput
from consentune.organize import SimilarityIndex
from consentune.organize.embedding import EMBEDDING_DIM
from consentune.organize.key import mirex_key_score
from consentune.organize.similar import ANN_THRESHOLD
from consentune.service import Consentune, open_service
from consentune.types import TrackId

TARGETS = {
    "tag_coverage": 0.75,
    "tag_precision": 0.95,
    "tempo_accuracy_octave_4pct": 0.90,
    "key_mirex_score": 0.70,
    "instrument_macro_auc": 0.90,
    "cost_s_per_track_max": 3.0,
    "similar_p95_ms_max": 50.0,
}
ACTOR = "bench:organize"
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
_HINT = "apt-get install fluidsynth fluid-soundfont-gm (or pass --soundfont FILE.sf2)"

Progress = Callable[[str], None]


def find_soundfont(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else [Path(p) for p in SOUNDFONTS]
    found = next((p for p in candidates if p is not None and p.is_file()), None)
    if found is None or shutil.which("fluidsynth") is None:
        raise InvalidInput("FluidSynth or a General MIDI soundfont is missing", hint=_HINT)
    return found


def render(piece: Piece, soundfont: Path, workdir: Path, *, rate: int = 44_100) -> bytes:
    """WAV bytes of ``piece`` rendered by FluidSynth (stereo, ``rate`` Hz)."""
    midi, wav = workdir / f"p{piece.seed}.mid", workdir / f"p{piece.seed}.wav"
    midi.write_bytes(piece_midi(piece))
    command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(rate), "-F", str(wav), str(soundfont), str(midi)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return wav.read_bytes()


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def zero_shot_auc(scores: np.ndarray, labels: list[str], names: list[str]) -> float:
    """Macro one-vs-rest ROC-AUC when column j of ``scores`` is the model's score for class ``names[j]``."""
    truth = np.array(labels)
    return float(np.nanmean([roc_auc(scores[:, j], truth == name) for j, name in enumerate(names)]))


def same_label_precision(vectors: np.ndarray, labels: list[str], *, k: int) -> dict[str, float]:
    """How often a track's k nearest neighbours (our similarity index) share its label, against chance."""
    tracks = [TrackId(f"p{i}") for i in range(len(labels))]
    index = SimilarityIndex(dim=vectors.shape[1])
    index.build(tracks, vectors.astype(np.float32))
    hits = []
    for i, track in enumerate(tracks):
        found = index.query(track, n=k) or []
        hits.append(np.mean([labels[int(f.track[1:])] == labels[i] for f in found]))
    counts = {label: labels.count(label) for label in set(labels)}
    chance = sum(c * (c - 1) for c in counts.values()) / (len(labels) * (len(labels) - 1))
    return {"similar_same_instrument_p_at_5": float(np.mean(hits)), "similar_same_instrument_chance": chance}


def probe_auc(vectors: np.ndarray, labels: list[str], *, folds: int = 5, seed: int = 0, ridge: float = 10.0) -> float:
    """Macro one-vs-rest ROC-AUC of a ridge classifier, stratified k-fold cross-validated."""
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), int)
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(y == c))
        fold_of[members] = np.arange(members.size) % folds
    scores = np.zeros((len(y), len(classes)))
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        mean, std = vectors[train].mean(axis=0), vectors[train].std(axis=0) + 1e-6
        x_train, x_test = (vectors[train] - mean) / std, (vectors[test] - mean) / std
        targets = np.eye(len(classes))[y[train]] * 2.0 - 1.0
        gram = x_train.T @ x_train + ridge * np.eye(x_train.shape[1])
        weights = np.linalg.solve(gram, x_train.T @ targets)
        scores[test] = x_test @ weights
    return float(np.nanmean([roc_auc(scores[:, c], y == c) for c in range(len(classes))]))


def _ground_truth(svc: Consentune, pieces: int, seed: int, soundfont: Path, progress: Progress) -> dict[str, Any]:
    artist = svc.catalog.add_artist("Bench Renderer", actor=ACTOR)
    names = sorted(LEAD_INSTRUMENTS)
    rows: list[dict[str, Any]] = []
    vectors = []
    tag_scores: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="consentune-midi-") as tmp:
        for i in range(pieces):
            piece = random_piece(seed * 100_000 + i, instrument=names[i % len(names)])
            data = render(piece, soundfont, Path(tmp))
            started = time.perf_counter()
            track = svc.catalog.ingest(data, filename=f"p{i}.wav", artist=artist, title=f"piece {i}", actor=ACTOR)
            report = svc.organize.analyze([track.track.id], actor=ACTOR)
            elapsed = time.perf_counter() - started
            found = svc.organize.descriptors(track.track.id, actor=ACTOR)
            if not report.analysed or found is None:
                raise InvalidInput(f"piece {i} was not analysed: {report.failed}", hint="see the error above")
            estimated = found.tempo_bpm or 0.0
            tempo_ok = any(abs(estimated - piece.bpm * f) <= 0.04 * piece.bpm * f for f in (1.0, 2.0, 0.5))
            key_score = (
                mirex_key_score((found.key_tonic, found.key_mode or ""), (piece.tonic, piece.mode))
                if found.key_tonic is not None
                else 0.0
            )
            rows.append(
                {
                    "piece": i,
                    "instrument": piece.instrument,
                    "drums": piece.drums,
                    "bpm": piece.bpm,
                    "estimated_bpm": found.tempo_bpm,
                    "tempo_ok": tempo_ok,
                    "tempo_exact_ok": abs(estimated - piece.bpm) <= 0.04 * piece.bpm,
                    "key": f"{piece.tonic}:{piece.mode}",
                    "estimated_key": found.key,
                    "key_score": key_score,
                    "seconds": round(elapsed, 3),
                    "audio_s": found.duration_s,
                }
            )
            vectors.append(found.vector())
            tag_scores.append([(found.autotags or {}).get(name, 0.0) for name in names])
            if (i + 1) % 10 == 0:
                progress(f"  rendered and analysed {i + 1}/{pieces} pieces")
    labels = [r["instrument"] for r in rows]
    return {
        "pieces": pieces,
        "tempo_accuracy_octave_4pct": float(np.mean([r["tempo_ok"] for r in rows])),
        "tempo_accuracy_exact_4pct": float(np.mean([r["tempo_exact_ok"] for r in rows])),
        "key_mirex_score": float(np.mean([r["key_score"] for r in rows])),
        "key_exact_share": float(np.mean([r["key_score"] == 1.0 for r in rows])),
        "instrument_macro_auc": zero_shot_auc(np.array(tag_scores), labels, names),
        "instrument_method": "musicnn MTT tag probability of the instrument's own tag, zero-shot",
        "instrument_probe_auc": probe_auc(np.stack(vectors), labels, seed=seed),
        **same_label_precision(np.stack(vectors), labels, k=5),
        "instrument_probe_method": "ridge probe on our embedding, 5-fold CV over the rendered pieces",
        "ground_truth_s_per_track_median": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


def _cost_full_length(svc: Consentune, tracks: int, seconds: float, progress: Progress) -> dict[str, Any]:
    """Ingest + decode + analyse + store, per full-length track (synthesized songs)."""
    artist = svc.catalog.add_artist("Bench Long", actor=ACTOR)
    times, cpu = [], []
    for i in range(tracks):
        data = encode(synthesize(SongSpec(seed=9000 + i, duration_s=seconds)), 44_100, format="flac")
        started, cpu_started = time.perf_counter(), time.process_time()
        track = svc.catalog.ingest(data, filename=f"long{i}.flac", artist=artist, title=f"long {i}", actor=ACTOR)
        svc.organize.analyze([track.track.id], actor=ACTOR)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    progress(f"  {tracks} full-length tracks of {seconds:.0f} s: median {statistics.median(times):.2f} s each")
    # wall time is what the target judges; CPU time shows how much of it was waiting for a shared core
    return {"cost_track_s": seconds, "cost_tracks": tracks, "cost_s_per_track": statistics.median(times),
            "cost_cpu_s_per_track": statistics.median(cpu), "cost_s_per_track_max_seen": max(times),
            "load_average_1min": os.getloadavg()[0]}  # fmt: skip


def similar_speed(n: int, queries: int, seed: int, progress: Progress) -> dict[str, Any]:
    """p50/p95 query latency over ``n`` clustered synthetic vectors, exact vs HNSW, and HNSW recall@10."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 50), EMBEDDING_DIM)).astype(np.float32)
    vectors = centres[rng.integers(len(centres), size=n)] + 0.5 * rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    tracks = [TrackId(f"v{i}") for i in range(n)]
    picks = rng.choice(n, size=queries, replace=False)
    out: dict[str, Any] = {"similar_vectors": n, "similar_queries": queries}
    results: dict[str, list[set[TrackId]]] = {}
    for name, threshold in (("exact", n + 1), ("hnsw", 1)):
        index = SimilarityIndex(dim=EMBEDDING_DIM, ann_threshold=threshold)
        started = time.perf_counter()
        index.build(tracks, vectors)
        out[f"similar_{name}_build_s"] = round(time.perf_counter() - started, 2)
        latencies, found = [], []
        for q in picks:
            t0 = time.perf_counter()
            hits = index.query(tracks[q], n=10)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            found.append({h.track for h in hits or []})
        results[name] = found
        out[f"similar_{name}_p50_ms"] = float(np.percentile(latencies, 50))
        out[f"similar_{name}_p95_ms"] = float(np.percentile(latencies, 95))
        progress(f"  similar ({name}): p95 {out[f'similar_{name}_p95_ms']:.2f} ms over {n:,} vectors")
    out["similar_hnsw_recall_at_10"] = float(
        np.mean([len(a & b) / max(1, len(a)) for a, b in zip(results["exact"], results["hnsw"], strict=True)])
    )
    # the figure that counts is the backend the service would pick at this size
    out["similar_backend_at_size"] = "exact" if n < ANN_THRESHOLD else "hnsw"
    out["similar_p95_ms"] = out[f"similar_{out['similar_backend_at_size']}_p95_ms"]
    return out


def run_organize(
    *,
    quick: bool = False,
    seed: int = 7,
    soundfont: Path | None = None,
    tags_data: Path | None = None,
    manifest: Path | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    sf2 = find_soundfont(soundfont)
    tags_data = tags_data or (
        Path(os.environ["CONSENTUNE_LASTFM_DIR"]) if "CONSENTUNE_LASTFM_DIR" in os.environ else None
    )
    pieces = 36 if quick else 108
    results: dict[str, Any] = {"quick": quick, "seed": seed, "soundfont": sf2.name}
    with tempfile.TemporaryDirectory(prefix="consentune-bench-") as tmp:
        svc = open_service(Settings(home=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'bench.db'}"))
        try:
            progress(f"ground truth: {pieces} rendered pieces ({sf2.name})")
            results.update(_ground_truth(svc, pieces, seed, sf2, progress))
            progress("cost per full-length track")
            results.update(_cost_full_length(svc, 2 if quick else 4, 180.0, progress))
        finally:
            svc.close()
    progress("similar-track queries")
    results.update(similar_speed(100_000, 200 if quick else 1000, seed, progress))
    targets = dict(TARGETS)
    checks: dict[str, bool] = {}
    if tags_data is not None:
        progress(f"tag normalization on {tags_data}")
        results.update(run_tags(tags_data))
        checks["tag_coverage"] = results["tag_coverage"] >= TARGETS["tag_coverage"]
        checks["tag_precision"] = results["tag_precision"] >= TARGETS["tag_precision"]
    else:
        progress("tag normalization skipped: pass --tags-data DIR (the HetRec 2011 Last.fm 2K folder)")
        del targets["tag_coverage"], targets["tag_precision"]
    if manifest is not None:
        progress(f"duplicates on {manifest}")
        results.update(run_duplicates(manifest, originals=12 if quick else 40, seed=seed, progress=progress))
        targets |= DUPLICATE_TARGETS
        checks["duplicates_precision"] = results["duplicates_precision"] >= DUPLICATE_TARGETS["duplicates_precision"]
        checks["duplicates_recall"] = results["duplicates_recall"] >= DUPLICATE_TARGETS["duplicates_recall"]
    else:
        progress("duplicates skipped: pass --manifest /path/to/music-corpus/manifest.tsv")
    results["targets"] = targets
    results["meets_targets"] = checks | {
        "tempo_accuracy_octave_4pct": results["tempo_accuracy_octave_4pct"] >= TARGETS["tempo_accuracy_octave_4pct"],
        "key_mirex_score": results["key_mirex_score"] >= TARGETS["key_mirex_score"],
        "instrument_macro_auc": results["instrument_macro_auc"] >= TARGETS["instrument_macro_auc"],
        "cost_s_per_track_max": results["cost_s_per_track"] <= TARGETS["cost_s_per_track_max"],
        "similar_p95_ms_max": results["similar_p95_ms"] <= TARGETS["similar_p95_ms_max"],
    }
    return results


__all__ = ["TARGETS", "find_soundfont", "probe_auc", "render", "roc_auc", "run_organize", "similar_speed"]
