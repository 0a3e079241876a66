"""The benchmark catalogue: many tracks of realistic length that are cheap to make.

A few base pieces (2-5 min, mono, 16000 Hz MP3: ~3.7 KB per second of audio)
are synthesized once and ingested for every artist, so each artist has an
"album" of the same pieces; the catalogue allows identical bytes under
different artists and each is its own track.  The server embeds each track's
XMP policy into the MP3 it serves, so the denominator of every share is the
size of the bytes *served* (read once in-process through the listener desk),
not the size stored.  (Ogg Vorbis would be smaller, but libsndfile crashed
encoding some 8000 Hz pieces, and mpg123 warns on 8000 Hz MP3.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.types import TRAIN_AI, TRAIN_GENERATIVE

SAMPLE_RATE_HZ = 16000
FORMAT = "mp3"
ACTOR = "admin:bench-shield"
_WORDS = (
    "amber", "atlas", "blue", "canyon", "cedar", "cinder", "coral", "delta", "ember", "fable", "falcon", "fern",
    "glacier", "harbour", "hollow", "indigo", "iris", "juniper", "lantern", "lunar", "maple", "meadow", "mirror",
    "nova", "oak", "orbit", "paper", "quartz", "raven", "river", "saffron", "signal", "silver", "solar", "summit",
    "thistle", "tide", "velvet", "willow", "winter", "zephyr", "echo", "static", "neon", "dusk", "harvest",
)  # fmt: skip


@dataclass(frozen=True)
class CatalogueTrack:
    """One catalogue entry as the benchmark knows it; ``size_bytes`` is what a full download yields."""

    id: str
    title: str
    artist: str
    duration_s: float
    size_bytes: int


@dataclass(frozen=True)
class Catalogue:
    """The tracks (in public catalogue order) and the words a listener may search for."""

    tracks: tuple[CatalogueTrack, ...]
    build_s: float

    @property
    def total_bytes(self) -> int:
        return sum(t.size_bytes for t in self.tracks)

    @property
    def total_audio_s(self) -> float:
        return sum(t.duration_s for t in self.tracks)


def build_catalogue(
    home: Path,
    *,
    tracks: int,
    base_pieces: int = 12,
    train_ai_share: float = 0.2,
    seed: int = 1,
    watermark: bool = True,
    progress: Callable[[str], object] = lambda _m: None,
) -> Catalogue:
    """Create ``tracks`` tracks in a fresh data folder ``home`` (SQLite); ~``tracks / base_pieces`` artists.

    ``watermark`` must match the server's ``CONSENTUNE_STREAM_WATERMARK``: marked streams are WAV, so the
    sizes every share is measured against differ.

    ``train_ai_share`` of the artists opt in to ``train-ai`` (a third of those also to
    ``train-generative``), so robots.txt and the policy headers are not uniform.
    """
    from consentune.demo.synth import STYLES, SongSpec, encode, synthesize

    started = time.perf_counter()
    rng = random.Random(seed)
    pieces: list[tuple[str, bytes]] = []
    progress(f"catalogue: synthesizing {base_pieces} base pieces at {SAMPLE_RATE_HZ} Hz")
    for i in range(base_pieces):
        spec = SongSpec(seed=1000 + i, duration_s=rng.uniform(120.0, 290.0), sample_rate=SAMPLE_RATE_HZ,
                        style=STYLES[i % len(STYLES)])  # fmt: skip
        mono = synthesize(spec).mean(axis=1)
        pieces.append((_title(rng), encode(mono, SAMPLE_RATE_HZ, format=FORMAT)))
    # the catalogue re-uploads the same pieces under many artists on purpose: no re-upload checks here
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'consentune.db'}", identify_at_ingest=False,
                        stream_watermark=watermark)  # fmt: skip
    svc = open_service(settings)
    try:
        artists = -(-tracks // base_pieces)
        progress(f"catalogue: ingesting {tracks:,} tracks for {artists:,} artists")
        # the gate's MP3 decoder (mpg123) prints harmless frame warnings for these files on the C stderr
        with _native_stderr_to(home / "ingest-stderr.log"):
            _ingest(svc, pieces, rng, tracks=tracks, artists=artists, train_ai_share=train_ai_share)
        names = {x.id: x.name for x in svc.catalog.artists()}
        listed = svc.catalog.tracks(limit=10**9)
        svc.listen.catalog_page(offset=0, limit=1)  # loads artist names, which the embedded XMP carries
        served = {t.id: svc.listen.served_size(t) for t in listed}  # watermarked streams are WAV
    finally:
        svc.close()
    entries = tuple(CatalogueTrack(t.id, t.title, names[t.artist_id], t.duration_s, served[t.id]) for t in listed)
    return Catalogue(entries, time.perf_counter() - started)


def _ingest(
    svc: Consentune,
    pieces: list[tuple[str, bytes]],
    rng: random.Random,
    *,
    tracks: int,
    artists: int,
    train_ai_share: float,
) -> None:
    made = 0
    for a in range(artists):
        artist = svc.catalog.add_artist(f"{_title(rng)} {a:04d}", actor=ACTOR)
        if rng.random() < train_ai_share:
            svc.consent.set(artist, purpose=TRAIN_AI, allow=True, actor=ACTOR)
            if rng.random() < 1 / 3:
                svc.consent.set(artist, purpose=TRAIN_GENERATIVE, allow=True, actor=ACTOR)
        for title, data in pieces[: tracks - made]:
            svc.catalog.ingest(data, filename=f"{title.replace(' ', '-')}.mp3", artist=artist,
                               title=f"{title} {a:04d}", actor=ACTOR)  # fmt: skip
            made += 1


def cached_catalogue(
    home: Path,
    *,
    cache: Path | None,
    tracks: int,
    base_pieces: int,
    watermark: bool = True,
    progress: Callable[[str], object] = lambda _m: None,
) -> Catalogue:
    """:func:`build_catalogue` into ``home``, or a copy of the one built earlier with the same sizes and code.

    The cache key covers the sizes, the package's migrations and this module and the stream marker's source,
    so a schema or serving change builds afresh.  ``cache`` None always builds."""
    if cache is None:
        return build_catalogue(home, tracks=tracks, base_pieces=base_pieces, watermark=watermark, progress=progress)
    entry = cache / f"catalogue-{tracks}-{base_pieces}-{'wm' if watermark else 'plain'}-{_code_digest()}"
    index = entry / "catalogue.json"
    if index.is_file():
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(entry / "home", home)
        raw = json.loads(index.read_text())
        progress(f"catalogue: reused {entry}")
        return Catalogue(tuple(CatalogueTrack(**t) for t in raw["tracks"]), float(raw["build_s"]))
    catalogue = build_catalogue(home, tracks=tracks, base_pieces=base_pieces, watermark=watermark, progress=progress)
    partial = entry.with_name(entry.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(home, partial / "home")
    tracks_json = [t.__dict__ for t in catalogue.tracks]
    (partial / "catalogue.json").write_text(json.dumps({"tracks": tracks_json, "build_s": catalogue.build_s}))
    partial.rename(entry)  # complete or absent, never half-written
    return catalogue


def _code_digest() -> str:
    import consentune

    root = Path(consentune.__file__).parent
    digest = hashlib.sha256()
    sources = [Path(__file__), root / "shield" / "streammark.py", root / "shield" / "policy.py",
               *sorted((root / "storage").rglob("*.py"))]  # fmt: skip
    for path in sources:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _native_stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 (what C libraries write to) to ``path`` for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _title(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}"


__all__ = ["FORMAT", "SAMPLE_RATE_HZ", "Catalogue", "CatalogueTrack", "build_catalogue", "cached_catalogue"]
