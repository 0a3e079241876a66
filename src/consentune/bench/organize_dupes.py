"""Duplicate groups on a real music corpus: seeded variants among all tracks, pairwise precision/recall.

Each sampled original gets two seeded variants (of: MP3 64 kb/s, Ogg Vorbis q1
(~80 kb/s; the catalogue accepts no AAC upload, so Vorbis stands in for it),
±3 dB gain, a 0–5 s trim at the start, ±3 % speed, a 30-s excerpt) made with
ffmpeg, plus, for every third original, a byte-identical upload by a second
artist.  Everything is ingested into one catalogue; a pair is a true
duplicate when both come from the same original.  Exact matching can only
find the byte-identical copies: the other variants need the near-duplicate
finder (the fingerprint engine), reported here as the recall gap.
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

from consentune.bench.identify_render import manifest_rows
from consentune.config import Settings
from consentune.errors import InvalidInput
from consentune.organize import group_pairs
from consentune.service import open_service
from consentune.types import TrackId

ACTOR = "bench:organize-duplicates"
TARGETS = {"duplicates_precision": 0.99, "duplicates_recall": 0.95}
_VARIANTS: dict[str, list[str]] = {
    "mp3-64k": ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100", "-f", "mp3"],
    "vorbis-q1": ["-c:a", "libvorbis", "-q:a", "1", "-ar", "44100", "-f", "ogg"],
    "gain+3dB": ["-af", "volume=3dB", "-c:a", "flac", "-f", "flac"],
    "gain-3dB": ["-af", "volume=-3dB", "-c:a", "flac", "-f", "flac"],
    # a speed change is a new rate read as the old one: resample to 44.1 kHz first, so a 48 kHz (Opus) source
    # changes by 3 % too (without it, "+3%" made Opus copies 5.4 % slower and "-3%" 10.9 % slower)
    "speed+3%": ["-af", "aresample=44100,asetrate=44100*1.03,aresample=44100", "-c:a", "flac", "-f", "flac"],
    "speed-3%": ["-af", "aresample=44100,asetrate=44100*0.97,aresample=44100", "-c:a", "flac", "-f", "flac"],
}


def _variant(source: Path, kind: str, rng: random.Random, out: Path) -> Path:
    args = ["ffmpeg", "-v", "error", "-y"]
    if kind == "trim":
        args += ["-ss", f"{rng.uniform(0.5, 5.0):.2f}", "-i", str(source), "-c:a", "flac", "-f", "flac"]
    elif kind == "excerpt-30s":
        args += ["-ss", "20", "-t", "30", "-i", str(source), "-c:a", "flac", "-f", "flac"]
    else:
        args += ["-i", str(source), *_VARIANTS[kind]]
    subprocess.run([*args, str(out)], check=True, capture_output=True, timeout=300)
    return out


def run_duplicates(
    manifest: Path, *, originals: int, seed: int, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    if shutil.which("ffmpeg") is None:
        raise InvalidInput("ffmpeg is needed to make the variants", hint="apt-get install ffmpeg")
    paths = [Path(row["path"]) for row in manifest_rows(manifest) if row["path"] and Path(row["path"]).is_file()]
    if not paths:
        raise InvalidInput(f"no readable audio listed in {manifest}", hint="list audio in a manifest.tsv path column")
    rng = random.Random(seed)
    picks = rng.sample(paths, min(originals, len(paths)))
    kinds = [*_VARIANTS, "trim", "excerpt-30s"]
    origin_of: dict[TrackId, int] = {}
    with tempfile.TemporaryDirectory(prefix="consentune-dupes-") as tmp:
        svc = open_service(Settings(home=Path(tmp) / "home", database_url=f"sqlite:///{Path(tmp) / 'b.db'}"))
        try:
            label = svc.catalog.add_artist("Label", actor=ACTOR)
            uploader = svc.catalog.add_artist("Re-uploader", actor=ACTOR)
            for number, source in enumerate(picks):
                files = [(source, label, "original")]
                for kind in rng.sample(kinds, 2):
                    files.append((_variant(source, kind, rng, Path(tmp) / f"{number}-{kind}.bin"), uploader, kind))
                if number % 3 == 0:
                    files.append((source, uploader, "byte-identical"))
                for path, artist, kind in files:
                    result = svc.catalog.ingest(path.read_bytes(), filename=f"{number}-{kind}{path.suffix or '.flac'}",
                                                artist=artist, title=f"{number} {kind}", actor=ACTOR)  # fmt: skip
                    origin_of[result.track.id] = number
                if (number + 1) % 10 == 0:
                    progress(f"  ingested {number + 1}/{len(picks)} originals with variants")
            direct = [(track, m.track) for track in origin_of for m in svc.organize.duplicates(track, actor=ACTOR)]
            # scored as groups (the relation is transitive): two re-uploads of one original are duplicates too
            groups = group_pairs(list(origin_of), direct)
            found = {frozenset(pair) for group in groups for pair in combinations(group, 2)}
        finally:
            svc.close()
    truth = {frozenset(p) for p in combinations(origin_of, 2) if origin_of[p[0]] == origin_of[p[1]]}
    hits = len(found & truth)
    return {
        "duplicates_originals": len(picks),
        "duplicates_tracks": len(origin_of),
        "duplicates_true_pairs": len(truth),
        "duplicates_found_pairs": len(found),
        "duplicates_direct_pairs": len({frozenset(p) for p in direct}),
        "duplicates_precision": hits / len(found) if found else float("nan"),
        "duplicates_recall": hits / len(truth) if truth else float("nan"),
        "duplicates_method": "exact (same SHA-256) and near (content identification matches at ingest)",
    }


__all__ = ["TARGETS", "run_duplicates"]
