"""Build the demo catalogue: a few artists, synthesized tracks in every format, mixed consents."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import Consentune
from consentune.types import ArtistId, PlayEvent, Purpose, Role, TrackId

ACTOR = "admin:demo"

# (artist, [(title, style, seed, format)], consent choices)
DEMO_ARTISTS: tuple[tuple[str, tuple[tuple[str, str, int, str], ...]], ...] = (
    (
        "Aurora Vale",
        (("Glass Harbour", "ambient", 11, "flac"), ("Night Ferry", "lofi", 12, "ogg-vorbis")),
    ),
    (
        "The Night Sequencers",
        (
            ("Pulse Grid", "techno", 21, "mp3"),
            ("Neon Rain", "pop", 22, "opus"),
            ("Static Bloom", "techno", 23, "wav"),
        ),
    ),
    ("Lumen Drift", (("Paper Lanterns", "pop", 31, "flac"), ("Slow Orbit", "ambient", 32, "mp3"))),
)


# Someone else re-uploads "Pulse Grid" 4 % faster (pitch and tempo together) to dodge matching;
# content identification catches it at ingest and the original's artist sees it on the dashboard.
REUPLOADER = "Tape Pirate"
REUPLOAD_OF = ("The Night Sequencers", "Pulse Grid")
REUPLOAD_SPEED = 1.04


@dataclass(frozen=True)
class DemoKeys:
    admin: str
    artists: dict[str, str]


def build_demo(
    svc: Consentune,
    *,
    duration_s: float = 20.0,
    progress: Callable[[str], object] = lambda _m: None,
) -> DemoKeys:
    """Create the demo catalogue once (idempotent), exercise the gate, return fresh API keys."""
    tracks: dict[str, list[TrackId]] = {}
    for name, songs in DEMO_ARTISTS:
        existing = next((a for a in svc.catalog.artists() if a.name == name), None)
        artist = existing or svc.catalog.add_artist(name, actor=ACTOR)
        tracks[name] = []
        have = {t.title: t.id for t in svc.catalog.tracks(artist=artist, limit=1000)}
        for title, style, seed, fmt in songs:
            if title in have:  # Ogg encoders pick random stream serials: never re-encode
                tracks[name].append(have[title])
                progress(f"  kept  {name} — {title}")
                continue
            rate = 48_000 if fmt == "opus" else 44_100
            audio = synthesize(SongSpec(seed=seed, duration_s=duration_s, sample_rate=rate, style=style))
            ext = {"ogg-vorbis": "ogg", "opus": "opus"}.get(fmt, fmt)
            data = encode(audio, rate, format=fmt)
            result = svc.catalog.ingest(
                data,
                filename=f"{title.lower().replace(' ', '-')}.{ext}",
                artist=artist,
                title=title,
                actor=ACTOR,
            )
            tracks[name].append(result.track.id)
            progress(f"  added {name} — {title} ({fmt})")
        if existing is None:
            _demo_consents(svc, name, tracks[name])
    _demo_reupload(svc, duration_s=duration_s, progress=progress)
    all_tracks = [t for ts in tracks.values() for t in ts]
    _exercise_gate(svc, all_tracks)
    _demo_plays(svc, all_tracks)
    report = svc.recommend.train(actor=ACTOR)
    progress(f"  trained recommendations: {report.tracks_used} tracks, {report.users} listeners, {report.plays} plays")
    _demo_impressions(svc)
    everything = [t.id for a in svc.catalog.artists() for t in svc.catalog.tracks(artist=a, limit=1000)]
    described = svc.organize.analyze(svc.organize.pending(everything), actor="service:demo-organize")
    progress(f"  organized: {len(described.analysed)} tracks described, {len(described.refused)} refused by consent")
    svc.ledger.checkpoint()
    _admin, admin_key = svc.keys.create(role=Role.ADMIN, label="demo admin")
    artist_keys = {}
    for name, _songs in DEMO_ARTISTS:
        artist = svc.catalog.artist(name)
        _rec, key = svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(artist.id), label=f"demo {name}")
        artist_keys[name] = key
    return DemoKeys(admin_key, artist_keys)


def _demo_reupload(svc: Consentune, *, duration_s: float, progress: Callable[[str], object]) -> None:
    """A sped-up copy of another artist's track, uploaded under a different name."""
    existing = next((a for a in svc.catalog.artists() if a.name == REUPLOADER), None)
    if existing is not None:
        return
    name, title = REUPLOAD_OF
    _title, style, seed, _fmt = next(song for artist, songs in DEMO_ARTISTS if artist == name for song in songs
                                     if song[0] == title)  # fmt: skip
    rate = 44_100
    original = synthesize(SongSpec(seed=seed, duration_s=duration_s, sample_rate=rate, style=style))
    # resampling by hand: played back at `rate`, the copy runs REUPLOAD_SPEED times faster
    frames = int(len(original) / REUPLOAD_SPEED)
    at = np.arange(frames) * REUPLOAD_SPEED
    faster = np.stack([np.interp(at, np.arange(len(original)), original[:, c]) for c in range(2)], axis=1)
    artist = svc.catalog.add_artist(REUPLOADER, actor=ACTOR)
    data = encode(faster.astype(np.float32), rate, format="mp3")
    svc.catalog.ingest(data, filename="pulse-grid-nightcore.mp3", artist=artist,
                       title=f"{title} (nightcore edit)", actor=ACTOR)  # fmt: skip
    claims = svc.claims.claims(as_artist=ArtistId(artist.id))
    progress(f"  added {REUPLOADER} — {title} (nightcore edit), a {REUPLOAD_SPEED:.2f}× copy: {len(claims)} "
             f"claim(s) opened at ingest; held (not streamed or recommended) until {name} decides")  # fmt: skip


def _demo_consents(svc: Consentune, name: str, tracks: list[TrackId]) -> None:
    artist = svc.catalog.artist(name)
    if name == "Aurora Vale":  # opts in to AI training, but not generative
        svc.consent.set(artist, purpose=Purpose("train-ai"), allow=True, actor=ACTOR)
    elif name == "The Night Sequencers":  # keeps one track out of recommendations
        svc.consent.set(artist, purpose=Purpose("recommend"), allow=False, actor=ACTOR, track=tracks[0])
        svc.consent.set(artist, purpose=Purpose("train-generative"), allow=True, actor=ACTOR, track=tracks[1])
    else:  # opts out of organization entirely
        svc.consent.set(artist, purpose=Purpose("organize"), allow=False, actor=ACTOR)


def _demo_plays(svc: Consentune, tracks: list[TrackId]) -> None:
    """A month of listening by 40 demo listeners with different tastes (once per data folder)."""
    if any(svc.store.user_plays("listener-00", limit=1)):
        return
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    plays = []
    for user in range(40):
        favourites = rng.sample(tracks, k=3)
        for _ in range(rng.randint(10, 40)):
            track = rng.choice(favourites) if rng.random() < 0.7 else rng.choice(tracks)
            at = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
            plays.append(PlayEvent(f"listener-{user:02d}", track, at, rng.randint(15_000, 200_000), country="FR"))
    svc.store.add_plays(plays)


def _demo_impressions(svc: Consentune) -> None:
    """Serve each demo listener one page of recommendations, as a listener app would (logged per track)."""
    for user in range(0, 40, 2):
        svc.recommend.for_user(f"listener-{user:02d}", n=3, actor="service:demo-listener-app")


def _exercise_gate(svc: Consentune, tracks: list[TrackId]) -> None:
    """Pipelines ask the gate, as they would in production; every answer lands in the ledger."""
    for purpose in ("identify", "recommend", "organize", "train-generative"):
        svc.gate.request(actor=f"service:demo-{purpose}", purpose=Purpose(purpose), tracks=tracks)
