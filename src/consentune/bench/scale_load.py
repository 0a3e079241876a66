"""The scale benchmark's own loader: a synthetic catalogue written straight into the database.

Tracks, artists, consent rules and plays go in with PostgreSQL ``COPY`` or
SQLite ``executemany`` in chunks, so loading 1M tracks takes seconds to
minutes and bounded memory.  The database's own triggers keep the full-text
index current as rows arrive; plays go through the store's play writer, so
the reach rollups are built exactly as an import builds them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from consentune.service import Consentune
from consentune.types import ArtistId, TrackId

CHUNK = 50_000
BIG_ARTIST_TRACKS = 10_000
BIG_ARTIST_PLAYS = 10_000
EXTRA_ARTISTS = 200
TRACKS_PER_ARTIST = 100
_SYLLABLES = ("ka", "lo", "mi", "ra", "ne", "so", "tu", "vi", "da", "be", "zo", "fi", "gu", "ha", "je", "ri")
_T0_US = 1_780_000_000 * 1_000_000
DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Loaded:
    tracks: int
    artists: int
    plays: int
    big_artist: ArtistId
    words: tuple[str, ...]  # the title vocabulary, most common first
    artist_words: tuple[str, ...]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """Pseudo-words of two to four syllables, shuffled, no repeats."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words, key=lambda _w: rng.random())


def load_catalogue(
    svc: Consentune,
    *,
    tracks: int,
    plays: int,
    seed: int = 7,
    progress: Callable[[str], object] = lambda _m: None,
) -> Loaded:
    """Write ``tracks`` tracks (one artist owns ``BIG_ARTIST_TRACKS`` of them), ~1% of artists allowing
    train-ai, and ``plays`` plays over the last 30 days: ``BIG_ARTIST_PLAYS`` on the big artist's tracks
    (all of them when it owns the whole catalogue), the rest on the other artists' tracks."""
    rng = random.Random(seed)
    words = vocabulary(5000, rng)
    # Zipf-like: some words are everywhere; cumulative once, or every draw would sum 5,000 weights
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))
    big = min(BIG_ARTIST_TRACKS, tracks)
    others = max(0, -(-(tracks - big) // TRACKS_PER_ARTIST))
    # at least EXTRA_ARTISTS more (without tracks at small sizes), so the operator's first page is full everywhere
    artist_ids = [ArtistId(f"art_{j:016x}") for j in range(1 + max(others, EXTRA_ARTISTS))]
    artist_words = [f"{words[-1 - (j % 2000)]}{j}" for j in range(len(artist_ids))]
    engine = svc.store.engine
    terms = max(svc.consent.all_terms())
    artist_rows = [(a, f"{artist_words[j]} {words[j % 97]}", terms, _T0_US) for j, a in enumerate(artist_ids)]
    _write(engine, "artists", ("id", "name", "terms_version", "created_us"), artist_rows)
    progress(f"  loaded {len(artist_ids):,} artists")
    track_columns = ("id", "artist_id", "title", "content_sha256", "format", "duration_s", "sample_rate",
                     "channels", "size_bytes", "created_us", "pos")  # fmt: skip

    def track_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(tracks):
            artist = artist_ids[0] if i < big else artist_ids[1 + (i - big) // TRACKS_PER_ARTIST]
            title = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(1, 4)))
            yield (f"trk_{i:016x}", artist, title.capitalize(), f"{i:064x}", "flac", 180.0, 44_100, 2, 4_000_000,
                   _T0_US + i, i + 1)  # fmt: skip

    if engine.dialect.name == "postgresql":
        _postgres_tracks(engine, track_columns, track_rows(), progress)
    else:
        for done in _write_chunks(engine, "tracks", track_columns, track_rows()):
            progress(f"  loaded {done:,} tracks")
    _consent_rules(engine, artist_ids, rng)
    _plays(svc, tracks=tracks, big=big, plays=plays, artist_ids=artist_ids, rng=rng, progress=progress)
    return Loaded(tracks, len(artist_ids), plays, artist_ids[0], tuple(words), tuple(artist_words))


def _postgres_tracks(
    engine: Engine, columns: Sequence[str], rows: Iterator[tuple[Any, ...]], progress: Callable[[str], object]
) -> None:
    """COPY into a staging table, then one INSERT … SELECT that computes every search vector, with the
    per-row trigger off and the GIN index built once afterwards (the same vectors the trigger makes)."""
    names = ", ".join(columns)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TEMP TABLE tracks_load AS SELECT {names} FROM tracks WITH NO DATA")
        raw = conn.connection.driver_connection
        done = 0
        with raw.cursor() as cursor, cursor.copy(f"COPY tracks_load ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
                done += 1
                if done % (CHUNK * 4) == 0:
                    progress(f"  staged {done:,} tracks")
        conn.exec_driver_sql("ALTER TABLE tracks DISABLE TRIGGER tracks_search_doc")
        conn.exec_driver_sql("DROP INDEX ix_tracks_search")
        conn.exec_driver_sql(
            f"INSERT INTO tracks ({names}, search) SELECT {', '.join('l.' + c for c in columns)}, "
            "to_tsvector('simple', l.title || ' ' || a.name) FROM tracks_load l JOIN artists a ON a.id = l.artist_id"
        )
        conn.exec_driver_sql("ALTER TABLE tracks ENABLE TRIGGER tracks_search_doc")
        conn.exec_driver_sql("CREATE INDEX ix_tracks_search ON tracks USING gin (search)")
        conn.exec_driver_sql("DROP TABLE tracks_load")
        conn.exec_driver_sql("SELECT setval('tracks_pos_seq', (SELECT max(pos) FROM tracks) + 1, false)")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE tracks")
        conn.exec_driver_sql("ANALYZE artists")
    progress(f"  loaded {done:,} tracks")


def _consent_rules(engine: Engine, artist_ids: Sequence[ArtistId], rng: random.Random) -> None:
    columns = ("artist_id", "track_id", "purpose", "allow", "actor", "created_us")
    chosen = rng.sample(list(artist_ids), max(1, len(artist_ids) // 100))
    rows = [(a, None, "train-ai", True, "bench", _T0_US) for a in chosen]
    rows += [(a, None, "organize", False, "bench", _T0_US + 1) for a in chosen[: len(chosen) // 2]]
    _write(engine, "consent_rules", columns, rows)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE consent_state SET version = version + 1 WHERE id = 1")


def _plays(
    svc: Consentune,
    *,
    tracks: int,
    big: int,
    plays: int,
    artist_ids: Sequence[ArtistId],
    rng: random.Random,
    progress: Callable[[str], object],
) -> None:
    now_us = _T0_US + 400 * DAY_US
    done = 0
    with svc.store.play_writer() as write:
        while done < plays:
            size = min(CHUNK, plays - done)
            rows = []
            owners: dict[TrackId, ArtistId] = {}
            for n in range(size):
                on_big = done + n < BIG_ARTIST_PLAYS or big == tracks  # the reach artist's audience is fixed
                i = rng.randrange(big) if on_big else big + rng.randrange(tracks - big)
                artist = artist_ids[0] if i < big else artist_ids[1 + (i - big) // TRACKS_PER_ARTIST]
                track = TrackId(f"trk_{i:016x}")
                owners[track] = artist
                played = now_us - rng.randrange(30 * DAY_US)
                user = f"u{rng.randrange(5000) if on_big else rng.randrange(max(1000, plays // 20))}"
                rows.append((user, track, played, 30_000, None, None, None, None, None))
            write(rows, owners)
            done += size
            if done % (CHUNK * 10) == 0 or done == plays:
                progress(f"  loaded {done:,} plays")


def now_us() -> int:
    """The clock the loaded plays are relative to (30 days before it)."""
    return _T0_US + 400 * DAY_US


def _write(engine: Engine, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    for _done in _write_chunks(engine, table, columns, iter(rows)):
        pass


def _write_chunks(engine: Engine, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> Iterator[int]:
    done = 0
    while True:
        chunk = [row for _i, row in zip(range(CHUNK), rows, strict=False)]
        if not chunk:
            return
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                raw = conn.connection.driver_connection
                statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
                    for row in chunk:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", chunk)
        done += len(chunk)
        yield done


__all__ = ["BIG_ARTIST_TRACKS", "Loaded", "load_catalogue", "now_us", "vocabulary"]
