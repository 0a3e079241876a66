"""``consentune bench identify --scale``: accuracy and cost as the index grows 10x at a time.

Catalogue: real tracks from the manifest mixed with generated pieces
(:mod:`consentune.bench.synth_music`, one seed per piece).  The smallest
size holds ``corpus_share`` of its tracks from the corpus and the rest
generated; every larger size adds generated pieces to the same index, so
the queries (drawn once, from tracks of the smallest size: half corpus,
half generated) are valid at every size and the accuracy change is the
effect of growth alone.  Negatives come from corpus tracks and pieces that
are never indexed.

Protocol per size: the index is grown (batches written as segments,
merged into shards of ``shard_tracks``), then every query (each
condition rendered once, decoded once through the gate as an upload)
is identified with :func:`~consentune.identify.identify_samples` against
the index; the CPU per query covers fingerprinting, lookup and matching
(the gate's decode, the same at every size, is measured once and
reported apart).  Build CPU covers fingerprinting and index writes (for
corpus tracks the gate's decode too, as at ingest); rendering the
generated pieces is reported apart.  audfprint (``pip install
'consentune[bench]'``) indexes the same audio at sizes up to
``peer_max`` and answers the same queries.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from consentune.bench.identify_peer import PEER_SR, AudfprintPeer, load_peer
from consentune.bench.identify_render import (
    SOURCE_SR,
    Excerpt,
    ManifestTrack,
    check_tools,
    cut,
    decode_file,
    read_manifest,
    render,
)
from consentune.bench.synth_music import piece_seconds, render_piece
from consentune.config import Settings
from consentune.identify import SAMPLE_RATE, MmapIndex, identify_samples, track_postings
from consentune.identify.triplets import fingerprint
from consentune.service import open_service

SCALE_CONDITIONS = ("clean", "mp3_32k", "opus_16k", "white_snr10", "white_snr0", "speed_p5", "pitch_p1st")
_NEGATIVE_SEEDS = 50_000_000  # generated pieces from here on are never indexed
_BATCH = 250  # tracks per index write


@dataclass(frozen=True, slots=True)
class _Query:
    condition: str
    length_s: float
    truth: str | None  # track id, None for a negative
    source: str  # "corpus" or "synth"
    samples: npt.NDArray[np.int16]  # decoded query at SAMPLE_RATE
    peer: npt.NDArray[np.int16] | None  # decoded at PEER_SR


def run_identify_scale(
    *,
    manifest: Path,
    sizes: Sequence[int] = (100, 1000, 10_000),
    seed: int = 2026,
    n_queries: int = 100,
    n_negatives: int = 100,
    lengths: Sequence[float] = (10.0, 5.0),
    conditions: Sequence[str] = SCALE_CONDITIONS,
    synth_s: tuple[float, float] = (30.0, 60.0),
    corpus_share: float = 0.5,
    shard_tracks: int = 4096,
    peer: bool = True,
    peer_max: int = 1000,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Grow one index through ``sizes`` and measure at each; returns a JSON-ready dict."""
    check_tools()
    sizes = sorted(sizes)
    corpus = read_manifest(manifest, group=None)
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(corpus))]
    n_corpus = min(int(sizes[0] * corpus_share), len(corpus) * 3 // 4)
    corpus_in, corpus_out = order[:n_corpus], order[n_corpus:]
    modules = load_peer() if peer else None
    results: dict[str, Any] = {
        "seed": seed,
        "sizes": list(sizes),
        "corpus_indexed": n_corpus,
        "corpus_negatives": len(corpus_out),
        "synth_seconds": list(synth_s),
        "queries_per_condition": n_queries,
        "negatives": n_negatives,
        "conditions": list(conditions),
        "peer": "audfprint2 (measured in this run)" if modules else "none (pip install 'consentune[bench]')",
        "peer_max": peer_max if modules else 0,
    }
    with tempfile.TemporaryDirectory(prefix="consentune-bench-scale-") as tmp:
        settings = Settings(home=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'b.db'}", identify_at_ingest=False)
        svc = open_service(settings)
        try:
            decode = svc.gate.decode_upload
            index = MmapIndex(Path(tmp) / "scale", shard_tracks=shard_tracks)
            audfp = AudfprintPeer(modules) if modules else None
            progress(f"queries: {n_queries} per condition x {len(conditions)} x {len(lengths)} lengths")
            queries, decode_cpu = _queries(corpus, corpus_in, corpus_out, sizes[0] - n_corpus, synth_s, rng,
                                           n_queries, n_negatives, lengths, conditions, decode,
                                           audfp is not None, seed)  # fmt: skip
            results["query_decode_cpu_s_mean"] = round(decode_cpu, 4)
            build = _Build()
            rows = []
            for size in sizes:
                _grow(index, audfp if size <= peer_max else None, build, corpus, corpus_in, size, synth_s,
                      decode, progress)  # fmt: skip
                if audfp is not None and size > peer_max:
                    audfp = None  # the peer stops growing; it is not measured beyond peer_max
                progress(f"{size} tracks: {index.stats().postings:,} postings; querying")
                rows.append(_measure(index, audfp, queries, size, build))
            results["rows"] = rows
            index.close()
        finally:
            svc.close()
    results["summary"] = _summary(results)
    return results


# -- catalogue -------------------------------------------------------------------
@dataclass
class _Build:
    synth: int = 0  # generated pieces indexed so far
    corpus_done: bool = False
    audio_s: float = 0.0
    cpu_s: float = 0.0  # fingerprint + index writes (+ corpus decode)
    render_cpu_s: float = 0.0
    corpus_audio_s: float = 0.0
    corpus_cpu_s: float = 0.0
    peer_audio_s: float = 0.0
    peer_cpu_s: float = 0.0


def _synth_id(piece: int) -> str:
    return f"synth-{piece}"


def _grow(
    index: MmapIndex,
    audfp: AudfprintPeer | None,
    build: _Build,
    corpus: list[ManifestTrack],
    corpus_in: list[int],
    size: int,
    synth_s: tuple[float, float],
    decode: Callable[..., tuple[npt.NDArray[np.float32], int]],
    progress: Callable[[str], object],
) -> None:
    if not build.corpus_done:
        progress(f"indexing {len(corpus_in)} corpus tracks (gate decode + fingerprint)")
        items = []
        for i in corpus_in:
            data = corpus[i].path.read_bytes()
            start = time.process_time()
            samples, _ = decode(data, filename=corpus[i].path.name, mono=True, target_sr=SAMPLE_RATE)
            items.append(track_postings(f"corpus-{i}", samples))
            build.corpus_cpu_s += time.process_time() - start
            build.corpus_audio_s += samples.shape[0] / SAMPLE_RATE
            if audfp is not None:
                _peer_add(audfp, build, f"corpus-{i}", decode_file(corpus[i].path), SOURCE_SR)
        start = time.process_time()
        index.add(items)
        build.corpus_cpu_s += time.process_time() - start
        build.cpu_s += build.corpus_cpu_s
        build.audio_s += build.corpus_audio_s
        build.corpus_done = True
    target = size - len(corpus_in)
    progress(f"generating and indexing pieces {build.synth}..{target - 1}")
    while build.synth < target:
        batch = range(build.synth, min(target, build.synth + _BATCH))
        items = []
        for piece in batch:
            start = time.process_time()
            samples = render_piece(piece, sample_rate=SAMPLE_RATE, duration_s=_length(piece, synth_s))
            mid = time.process_time()
            items.append(track_postings(_synth_id(piece), samples))
            build.render_cpu_s += mid - start
            build.cpu_s += time.process_time() - mid
            build.audio_s += samples.shape[0] / SAMPLE_RATE
            if audfp is not None:
                _peer_add(audfp, build, _synth_id(piece), samples, SAMPLE_RATE)
        start = time.process_time()
        index.add(items)
        build.cpu_s += time.process_time() - start
        build.synth = batch.stop


def _length(piece: int, synth_s: tuple[float, float]) -> float:
    return piece_seconds(piece, min_s=synth_s[0], max_s=synth_s[1])


def _peer_add(audfp: AudfprintPeer, build: _Build, name: str, samples: npt.NDArray[np.float32], rate: int) -> None:
    start = time.process_time()
    audfp.add(name, _to_peer_rate(samples, rate))
    build.peer_cpu_s += time.process_time() - start
    build.peer_audio_s += samples.shape[0] / rate


def _to_peer_rate(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    g = np.gcd(PEER_SR, rate)
    return np.asarray(resample_poly(samples, PEER_SR // g, rate // g), dtype=np.float32)


# -- queries ---------------------------------------------------------------------
def _queries(
    corpus: list[ManifestTrack],
    corpus_in: list[int],
    corpus_out: list[int],
    n_synth_base: int,
    synth_s: tuple[float, float],
    rng: np.random.Generator,
    n_queries: int,
    n_negatives: int,
    lengths: Sequence[float],
    conditions: Sequence[str],
    decode: Callable[..., tuple[npt.NDArray[np.float32], int]],
    with_peer: bool,
    seed: int,
) -> tuple[list[_Query], float]:
    """Excerpts of the smallest catalogue (half corpus, half generated) in every condition, decoded once."""
    plan: list[tuple[float, str, str | None, str, int, int]] = []  # length, condition, truth, kind, item, excerpt
    for length in lengths:
        for n in range(n_queries):
            from_corpus = n % 2 == 0 and bool(corpus_in)
            item = corpus_in[int(rng.integers(len(corpus_in)))] if from_corpus else int(rng.integers(n_synth_base))
            truth = f"corpus-{item}" if from_corpus else _synth_id(item)
            plan += [(length, c, truth, "corpus" if from_corpus else "synth", item, n) for c in conditions]
        for n in range(n_negatives):
            from_corpus = n % 2 == 0 and bool(corpus_out)
            item = corpus_out[int(rng.integers(len(corpus_out)))] if from_corpus else _NEGATIVE_SEEDS + n
            plan.append((length, "negative", None, "corpus" if from_corpus else "synth", item, n_queries + n))
    out: list[_Query] = []
    decode_cpu: list[float] = []
    excerpts: dict[tuple[float, str, int, int], Excerpt] = {}
    loaded: tuple[str, int] | None = None
    audio = np.zeros(0, dtype=np.float32)
    by_source = sorted(range(len(plan)), key=lambda i: (plan[i][3], plan[i][4], i))  # one source in memory at a time
    for k in by_source:
        length, condition, expected, kind, item, number = plan[k]
        if loaded != (kind, item):
            loaded = (kind, item)
            audio = (
                decode_file(corpus[item].path) if kind == "corpus"
                else render_piece(item, sample_rate=SOURCE_SR, duration_s=_length(item, synth_s))
            )  # fmt: skip
        slot = (length, kind, item, number)
        if slot not in excerpts:
            pick = np.random.default_rng([seed, int(length * 1000), number])
            offset = float(pick.uniform(0, max(0.0, audio.shape[0] / SOURCE_SR - length * 1.1 - 1)))
            start, clip = cut(audio, offset, length, pick)
            excerpts[slot] = Excerpt(-1, start, length, clip, Path(f"{kind}:{item}"))
        data = render(condition, excerpts[slot], np.random.default_rng([seed, int(length * 1000), k, 1]))
        began = time.process_time()
        samples, _ = decode(data, mono=True, target_sr=SAMPLE_RATE)
        decode_cpu.append(time.process_time() - began)
        peer_samples = decode(data, mono=True, target_sr=PEER_SR)[0] if with_peer else None
        out.append(
            _Query(
                condition, length, expected, kind, _pcm(samples), None if peer_samples is None else _pcm(peer_samples)
            )
        )
    return out, statistics.fmean(decode_cpu)


def _pcm(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    return np.asarray(np.clip(np.round(samples * 32767), -32768, 32767), dtype=np.int16)


def _float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return pcm.astype(np.float32) / 32767.0


# -- measuring -------------------------------------------------------------------
def _measure(
    index: MmapIndex, audfp: AudfprintPeer | None, queries: list[_Query], size: int, build: _Build
) -> dict[str, Any]:
    cells: dict[str, dict[str, Any]] = {}
    cpu: dict[float, list[float]] = {}
    peer_cpu: dict[float, list[float]] = {}
    candidates: list[int] = []
    stopped: list[int] = []
    for q in queries:
        samples = _float(q.samples)
        start = time.process_time()
        found = identify_samples(samples, index)
        cpu.setdefault(q.length_s, []).append(time.process_time() - start)
        top = found[0].track_id if found else None
        cell = cells.setdefault(f"{q.condition} {q.length_s:g}s", {"n": 0, "ours": 0, "peer": 0, "corpus": [0, 0]})
        cell["n"] += 1
        hit = top == q.truth if q.truth else top is not None
        cell["ours"] += hit
        if q.source == "corpus":
            cell["corpus"][0] += hit
            cell["corpus"][1] += 1
        if q.length_s == 10.0 and q.condition == "clean":  # how much the index hands the matcher
            postings = index.lookup(fingerprint(samples, query=True)[1].key)
            candidates.append(int(postings.query_row.size))
            stopped.append(postings.stopped)
        if audfp is not None and q.peer is not None:
            start = time.process_time()
            answer = audfp.match(_float(q.peer))
            peer_cpu.setdefault(q.length_s, []).append(time.process_time() - start)
            cell["peer"] += answer == q.truth if q.truth else answer is not None
    stats = index.stats()
    hours = build.audio_s / 3600
    row: dict[str, Any] = {
        "tracks": stats.tracks,
        "audio_h": round(hours, 2),
        "postings": stats.postings,
        "segments": stats.segments,
        "stop_cap": index.stop_cap(),
        "index_mb": round(stats.bytes_on_disk / 1e6, 2),
        "index_mb_per_audio_h": round(stats.bytes_on_disk / 1e6 / hours, 3),
        "build_cpu_s_per_audio_h": round(build.cpu_s / hours, 2),
        "corpus_build_cpu_s_per_audio_h": round(build.corpus_cpu_s / (build.corpus_audio_s / 3600), 2),
        "render_cpu_s_per_audio_h": round(build.render_cpu_s / max(1e-9, hours - build.corpus_audio_s / 3600), 2),
        "candidates_per_clean_query": round(statistics.fmean(candidates), 1) if candidates else None,
        "stopped_hashes_per_clean_query": round(statistics.fmean(stopped), 1) if stopped else None,
        "query_cpu_s": {f"{k:g}s": round(statistics.fmean(v), 4) for k, v in cpu.items()},
        "peer_measured": audfp is not None,
        "conditions": {},
    }
    if audfp is not None:
        row["peer_query_cpu_s"] = {f"{k:g}s": round(statistics.fmean(v), 4) for k, v in peer_cpu.items()}
        row["peer_build_cpu_s_per_audio_h"] = round(build.peer_cpu_s / (build.peer_audio_s / 3600), 2)
        row["peer_table_mb"] = round(audfp.size_bytes() / 1e6, 2)
    for name, cell in cells.items():
        out = {"n": cell["n"], "ours_pct": round(100.0 * cell["ours"] / cell["n"], 2)}
        if cell["corpus"][1]:
            out["ours_corpus_pct"] = round(100.0 * cell["corpus"][0] / cell["corpus"][1], 2)
        if audfp is not None:
            out["peer_pct"] = round(100.0 * cell["peer"] / cell["n"], 2)
        row["conditions"][name] = out
    row["size"] = size
    return row


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    rows = results["rows"]
    first, last = rows[0], rows[-1]
    goals: dict[str, Any] = {}
    worst = max(
        (first["conditions"][c]["ours_pct"] - last["conditions"][c]["ours_pct"], c)
        for c in first["conditions"]
        if not c.startswith("negative")
    )
    span = f"{first['tracks']} -> {last['tracks']} tracks"
    goals[f"accuracy drop, worst condition ({span})"] = {
        "value": round(worst[0], 2), "where": worst[1], "target": "<=1", "met": worst[0] <= 1.0,
    }  # fmt: skip
    for a, b in itertools.pairwise(rows):
        growth = b["query_cpu_s"]["10s"] / a["query_cpu_s"]["10s"] if "10s" in a["query_cpu_s"] else float("nan")
        per10 = growth ** (1.0 / np.log10(b["tracks"] / a["tracks"]))
        goals[f"query CPU growth per 10x tracks ({a['tracks']} -> {b['tracks']})"] = {
            "value": round(float(per10), 2), "target": "<=2", "met": bool(per10 <= 2.0),
        }  # fmt: skip
    for row in rows:
        false = max(v["ours_pct"] for k, v in row["conditions"].items() if k.startswith("negative"))
        goals[f"false matches at {row['tracks']} tracks"] = {"value": false, "target": "<=0.5", "met": false <= 0.5}
    goals["build CPU-s per audio h (largest)"] = {
        "value": last["build_cpu_s_per_audio_h"], "target": "<=12", "met": last["build_cpu_s_per_audio_h"] <= 12,
    }  # fmt: skip
    goals["index MB per audio h (largest)"] = {
        "value": last["index_mb_per_audio_h"], "target": "<=1", "met": last["index_mb_per_audio_h"] <= 1,
    }  # fmt: skip
    return goals


__all__ = ["SCALE_CONDITIONS", "run_identify_scale"]
