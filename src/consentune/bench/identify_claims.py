"""Claims on a real music corpus: copies uploaded by other accounts, including one that uploads many copies first.

For each sampled original (uploaded by the "Label" artist) the bench makes
seeded variants with ffmpeg — re-encodes, gain, mono, a trim, ±3 % speed, and
excerpts of 30 s, 60 s and 3 min (where the original is long enough) — and
uploads them from other accounts.  A "hoarder" account first uploads 14
copies of one original (every variant, then four more): the crowding attack.  Unrelated corpus
tracks are uploaded by a third account and must never be claimed.  The corpus has no truth about
audio shared between its files, so every claim touching an "unrelated" track or naming a wrong original
is re-examined by an independent audio comparison (:mod:`consentune.bench.claims_truth`): it is counted
false unless the two claimed ranges really hold the same audio, and reported either way.

Scored: share of copies with a claim on their true original; claims on
unrelated uploads or on the wrong original; near-duplicate pairs (copy ↔
original, and copies of one original among themselves, as groups) with the
organize duplicates finder, precision and recall.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

from consentune.bench.claims_truth import SharedAudioCheck
from consentune.bench.identify_render import manifest_rows
from consentune.config import Settings
from consentune.errors import InvalidInput
from consentune.organize import group_pairs
from consentune.service import open_service
from consentune.types import ArtistId, TrackId

ACTOR = "bench:claims"
TARGETS = {
    "claims_copy_recall": 0.99,
    "claims_false": 0,
    "near_duplicate_recall": 0.95,
    "near_duplicate_precision": 0.99,
}
_FLAC = ["-c:a", "flac", "-f", "flac"]
_VARIANTS: dict[str, list[str]] = {
    "mp3-64k": ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100", "-f", "mp3"],
    "vorbis-q1": ["-c:a", "libvorbis", "-q:a", "1", "-ar", "44100", "-f", "ogg"],
    "gain-4dB": ["-af", "volume=-4dB", *_FLAC],
    "mono": ["-ac", "1", *_FLAC],
    # a speed change is a new rate read as the old one: resample to 44.1 kHz first, so a 48 kHz (Opus) source
    # changes by 3 % too (without it, "+3%" made Opus copies 5.4 % slower and "-3%" 10.9 % slower)
    "speed+3%": ["-af", "aresample=44100,asetrate=44100*1.03,aresample=44100", *_FLAC],
    "speed-3%": ["-af", "aresample=44100,asetrate=44100*0.97,aresample=44100", *_FLAC],
}
_EXCERPTS = {"excerpt-30s": 30.0, "excerpt-60s": 60.0, "excerpt-3min": 180.0}


def _make(source: Path, kind: str, duration_s: float, rng: random.Random, out: Path) -> Path | None:
    args = ["ffmpeg", "-v", "error", "-y"]
    if kind in _EXCERPTS:
        length = _EXCERPTS[kind]
        if duration_s < length + 10:
            return None
        start = rng.uniform(0.0, duration_s - length)
        args += ["-ss", f"{start:.2f}", "-t", f"{length:.0f}", "-i", str(source), *_FLAC]
    elif kind == "trim":
        args += ["-ss", f"{rng.uniform(1.0, 8.0):.2f}", "-i", str(source), *_FLAC]
    else:
        args += ["-i", str(source), *_VARIANTS[kind]]
    subprocess.run([*args, str(out)], check=True, capture_output=True, timeout=300)
    return out


def _detail(claim: Any, copy_title: str, original_title: str) -> dict[str, Any]:
    return {
        "copy": copy_title,
        "original": original_title,
        "score": round(claim.score, 2),
        "partial": claim.partial,
        "time_scale": round(claim.time_scale, 4),
        "copy_range_s": [round(claim.copy_start_s, 1), round(claim.copy_end_s, 1)],
        "original_range_s": [round(claim.original_start_s, 1), round(claim.original_end_s, 1)],
    }


def _rows(manifest: Path) -> list[tuple[Path, float]]:
    rows = manifest_rows(manifest)
    out = [(Path(r["path"]), float(r.get("duration_s") or 0.0)) for r in rows if Path(r["path"]).is_file()]
    if not out:
        raise InvalidInput(f"no readable audio listed in {manifest}", hint="run make-music-corpus.sh to make one")
    return out


def run_claims(
    manifest: Path,
    *,
    originals: int = 12,
    unrelated: int = 12,
    seed: int = 2026,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    if shutil.which("ffmpeg") is None:
        raise InvalidInput("ffmpeg is needed to make the variants", hint="apt-get install ffmpeg")
    rng = random.Random(seed)
    rows = _rows(manifest)
    picks = rng.sample(rows, min(originals + unrelated, len(rows)))
    sources, others = picks[:originals], picks[originals:]
    kinds = [*_VARIANTS, "trim", *_EXCERPTS]
    origin_of: dict[TrackId, int] = {}
    copies: dict[TrackId, tuple[int, str, str]] = {}  # copy -> (original number, kind, uploader)
    originals_by_number: dict[int, TrackId] = {}
    unrelated_ids: list[TrackId] = []
    path_of: dict[TrackId, Path] = {}
    with tempfile.TemporaryDirectory(prefix="consentune-claims-") as tmp:
        svc = open_service(Settings(home=Path(tmp) / "home", database_url=f"sqlite:///{Path(tmp) / 'b.db'}"))
        try:
            label = svc.catalog.add_artist("Label", actor=ACTOR)
            uploaders = [svc.catalog.add_artist(f"Uploader {i}", actor=ACTOR) for i in range(3)]
            hoarder = svc.catalog.add_artist("Hoarder", actor=ACTOR)
            bystander = svc.catalog.add_artist("Bystander", actor=ACTOR)

            def upload(path: Path, artist: Any, title: str) -> TrackId:
                result = svc.catalog.ingest(path.read_bytes(), filename=f"{title}{path.suffix or '.flac'}",
                                            artist=artist, title=title, actor=ACTOR)  # fmt: skip
                return result.track.id

            for number, (source, _duration) in enumerate(sources):
                track = upload(source, label, f"{number} original")
                originals_by_number[number] = track
                origin_of[track] = number
                path_of[track] = source
            for path, _duration in others:
                unrelated_ids.append(upload(path, bystander, f"unrelated {path.stem}"))
                path_of[unrelated_ids[-1]] = path
            progress(f"  {len(sources)} originals and {len(others)} unrelated tracks uploaded")
            jobs: list[tuple[int, str, Any]] = []
            for number in range(len(sources)):
                for kind in kinds:
                    jobs.append((number, kind, uploaders[rng.randrange(len(uploaders))]))
            # the crowding attack: the hoarder's first eight copies of original 0, then more of every kind
            hoard = [(0, kind, hoarder) for kind in kinds] + [(0, kind, hoarder) for kind in rng.sample(kinds, 4)]
            for i, (number, kind, artist) in enumerate([*hoard, *jobs]):
                source, duration = sources[number]
                made = _make(source, kind, duration, rng, Path(tmp) / f"v{i}.bin")
                if made is None:
                    continue
                track = upload(made, artist, f"{number} {kind} {i}")
                copies[track] = (number, kind, artist.name)
                path_of[track] = made
                origin_of[track] = number
                if (i + 1) % 20 == 0:
                    progress(f"  uploaded {i + 1} copies")
            claims = svc.claims.claims(as_artist=None, limit=10**6)
            claimed_right = {
                c.copy_track_id
                for c in claims
                if c.copy_track_id in copies and c.original_track_id == originals_by_number[copies[c.copy_track_id][0]]
            }
            bystanders = set(unrelated_ids)
            on_unrelated = [c for c in claims if {c.copy_track_id, c.original_track_id} & bystanders]
            wrong_original = [
                c
                for c in claims
                if c.copy_track_id in copies and c.original_track_id in originals_by_number.values()
                and c.original_track_id != originals_by_number[copies[c.copy_track_id][0]]
            ]  # fmt: skip
            audio_check = SharedAudioCheck([path for path, _ in others], seed=seed)
            suspect = [*on_unrelated, *wrong_original]
            checks = {
                c.id: audio_check.check(copy_path, (c.copy_start_s, c.copy_end_s),
                                        original_path, (c.original_start_s, c.original_end_s))
                for c in suspect
                if (copy_path := path_of.get(c.copy_track_id)) and (original_path := path_of.get(c.original_track_id))
            }  # fmt: skip
            shared = [c for c in suspect if c.id in checks and checks[c.id].shared]
            wrong = [c for c in suspect if c not in shared]
            direct = [
                (t, m.track) for t in [*origin_of, *unrelated_ids] for m in svc.organize.duplicates(t, actor=ACTOR)
            ]
            groups = group_pairs([*origin_of, *unrelated_ids], direct)
            found = {frozenset(p) for g in groups for p in combinations(g, 2)}
            per_kind: dict[str, list[int]] = {}
            for track, (_n, kind, _who) in copies.items():
                per_kind.setdefault(kind, []).append(int(track in claimed_right))
            hoarder_copies = [t for t, (_n, _k, who) in copies.items() if who == "Hoarder"]
            hoarder_claimed = sum(t in claimed_right for t in hoarder_copies)

            # the bench's "unrelated" label can be wrong (two versions of one piece share audio): show each
            def detail(c: Any) -> dict[str, Any]:
                row = _detail(c, svc.catalog.track(c.copy_track_id).title, svc.catalog.track(c.original_track_id).title)
                if c.id in checks:
                    check = checks[c.id]
                    row["audio_check"] = {"score": round(check.score, 3), "null_max": round(check.null_max, 3),
                                          "recording": round(check.recording, 3),
                                          "recording_null_max": round(check.recording_null_max, 3)}  # fmt: skip
                return row

            wrong_detail = [detail(c) for c in wrong]
            # copies left unclaimed, each with what it was claimed against instead (if anything)
            missed_detail = [
                {"copy": svc.catalog.track(t).title, "kind": kind, "uploader": who,
                 "claims": [detail(c) for c in claims if c.copy_track_id == t]}
                for t, (_n, kind, who) in copies.items()
                if t not in claimed_right
            ]  # fmt: skip
            shared_detail = [detail(c) for c in shared]
            copy_of_label = [
                c for c in claims if c.original_artist_id == ArtistId(label.id) and c.copy_track_id in copies
            ]
        finally:
            svc.close()
    truth = {frozenset(p) for p in combinations(origin_of, 2) if origin_of[p[0]] == origin_of[p[1]]}
    hits = len(found & truth)
    return {
        "seed": seed,
        "originals": len(sources),
        "unrelated": len(others),
        "copies": len(copies),
        "claims_copy_recall": len(claimed_right) / len(copies) if copies else float("nan"),
        "claims_false": len(wrong),
        "claims_false_detail": wrong_detail,
        "claims_missed_detail": missed_detail,
        "claims_on_unrelated_label": len(on_unrelated),
        "claims_shared_audio": len(shared),
        "claims_shared_audio_detail": shared_detail,
        "claims_partial": sum(c.partial for c in copy_of_label),
        "claims_per_variant": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per_kind.items())},
        "hoarder_copies_claimed": f"{hoarder_claimed}/{len(hoarder_copies)}",
        "near_duplicate_true_pairs": len(truth),
        "near_duplicate_found_pairs": len(found),
        "near_duplicate_precision": hits / len(found) if found else float("nan"),
        "near_duplicate_recall": hits / len(truth) if truth else float("nan"),
    }


__all__ = ["TARGETS", "run_claims"]
