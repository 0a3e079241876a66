"""Bulk play import: the column-checked CSV path agrees with the row parser; reach rollups equal a recount."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentune.plays.fastcsv import arrow_csv_chunks
from consentune.plays.parse import iter_play_file
from consentune.service import Consentune
from consentune.types import Artist, PlayEvent, Track, TrackId
from tests.shield.test_public_catalog import add_track

HEADER = "user_id,track_id,played_at,ms_played,ip,device_id,user_agent,country,account_created_at\n"
DAY_US = 86_400_000_000


def test_column_checks_agree_with_the_row_parser(tmp_path: Path) -> None:
    rows = [
        "u1,trk_a,2026-11-01T10:00:00Z,183000,192.0.2.1,dev1,Firefox,fr,",
        "u2,trk_a,1793527200,30500,,,,,1700000000",
        " u3,trk_a,2026-11-01T10:00:00Z,1000,,,,,",  # surrounding space: the row parser trims it
        "u4,trk_a,2026-11-01T10:00:00.250+02:00,1000,2001:DB8::1,,,,",  # fractional, IPv6 made canonical
        "u5,trk_a,yesterday,1000,,,,,",
        "u6,trk_a,2026-11-01T10:00:00Z,-5,,,,,",
        "u7,trk_a,2026-11-01T10:00:00Z,1.0,010.0.0.1,,,,",
        "u8,trk_a,2026-11-01T10:00:00,1000,,,,,",
        "u9,trk_a,0001-01-01T00:00:00+01:00,1000,,,,,",
        "u10,trk_a,2026-11-01T10:00:00Z,1000,,,,France,",
        ",trk_a,2026-11-01T10:00:00Z,1000,,,,,",
        "u12,trk_a,2026-11-01T10:00:00Z,1000,999.1.1.1,,,,",
        "u13,trk_a,2026-11-01T10:00:00Z,86400001,,,,,",
        "u14,trk_a,2026-11-01T10:00:00Z,0,,dev\x01,,,",
        "u15,trk_a,2026-11-01T10:00:00Z,7,,,,,yesterday",
    ]
    rows += [f"v{i},trk_{i % 7},{1_790_000_000 + i * 37},{i * 11},10.1.{i % 256}.{i % 200},,,DE," for i in range(400)]
    path = tmp_path / "plays.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    fast = list(arrow_csv_chunks(path, block_bytes=2048))
    slow = list(iter_play_file(path, chunk_rows=97))
    assert len(fast) > 3  # several blocks, so lines carry over between chunks
    fast_rows = sorted(zip((line for c in fast for line in c.lines), (r for c in fast for r in c.rows), strict=True))
    slow_rows = sorted(zip((line for c in slow for line in c.lines), (r for c in slow for r in c.rows), strict=True))
    assert fast_rows == slow_rows and len(fast_rows) == 404
    fast_errors = sorted((e.line, e.message) for c in fast for e in c.errors)
    assert fast_errors == sorted((e.line, e.message) for c in slow for e in c.errors)
    assert [line for line, _m in fast_errors] == list(range(6, 17))


def _recount(
    svc: Consentune, tracks: dict[TrackId, Artist], first: int, last: int
) -> tuple[dict[str, dict[int, tuple[int, int]]], dict[TrackId, int], dict[str, int]]:
    per_day: dict[str, Counter[int]] = defaultdict(Counter)
    listeners: dict[tuple[str, int], set[str]] = defaultdict(set)
    everyone: dict[str, set[str]] = defaultdict(set)
    per_track: Counter[TrackId] = Counter()
    for page in svc.store.iter_plays(list(tracks)):
        for play in page:
            day = int(play.played_at.timestamp()) * 1_000_000 // DAY_US
            if not first <= day <= last:
                continue
            artist = tracks[play.track_id].id
            per_day[artist][day] += 1
            listeners[artist, day].add(play.user_id)
            everyone[artist].add(play.user_id)
            per_track[play.track_id] += 1
    days = {a: {d: (n, len(listeners[a, d])) for d, n in counts.items()} for a, counts in per_day.items()}
    return days, dict(per_track), {a: len(users) for a, users in everyone.items()}


def test_reach_rollups_equal_a_recount_of_the_plays(svc: Consentune, tmp_path: Path) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    catalogue: dict[TrackId, Artist] = {}
    for artist in (ada, bo):
        for n in range(4):
            track: Track = add_track(svc, artist, f"{artist.name} {n}")
            catalogue[track.id] = artist
    ids = sorted(catalogue)
    rnd = random.Random(7)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for part in range(2):  # two imports share listeners and days: nobody may be counted twice
        lines = [
            f"u{rnd.randrange(15)},{rnd.choice(ids)},{(start + timedelta(hours=rnd.randrange(120))).isoformat()},1000"
            for _ in range(300)
        ]
        lines.append(f"u1,trk_unknown,{start.isoformat()},1000")
        path = tmp_path / f"plays{part}.csv"
        path.write_text("user_id,track_id,played_at,ms_played\n" + "\n".join(lines) + "\n")
        report = svc.plays.import_file(path)
        assert (report.imported, report.rejected) == (300, 1)
    svc.store.add_plays([PlayEvent("u99", ids[0], start + timedelta(days=2), 5000)])
    first, last = int(start.timestamp()) // 86_400, int(start.timestamp()) // 86_400 + 4
    days, per_track, everyone = _recount(svc, catalogue, first, last)
    for artist in (ada, bo):
        stored = svc.store.artist_days(artist.id, first_day=first, last_day=last)
        assert {d: (p, n) for d, (p, n, _i) in stored.items()} == days[artist.id]
        assert svc.store.artist_listeners(artist.id, first_day=first, last_day=last) == everyone[artist.id]
    totals = svc.store.track_totals(ids, first_day=first, last_day=last)
    assert {t: p for t, (p, _i) in totals.items()} == per_track
    svc.store.add_impressions([ids[0], ids[0], ids[5]], at=start)
    after = svc.store.track_totals([ids[0], ids[5]], first_day=first, last_day=first)
    assert after[ids[0]][1] == 2 and after[ids[5]][1] == 1
    assert svc.store.artist_days(catalogue[ids[0]].id, first_day=first, last_day=first)[first][2] >= 2


def test_concurrent_imports_count_each_listener_once(svc: Consentune) -> None:
    import threading

    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    tracks = [add_track(svc, ada, f"Song {n}").id for n in range(3)]
    day0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) // 86_400
    owners = dict.fromkeys(tracks, ada.id)
    entered = threading.Barrier(2)
    # SQLite has one writer (BEGIN IMMEDIATE): the second import waits for the first instead of overlapping
    overlap = svc.store.engine.dialect.name != "sqlite"

    def importer(seed: int) -> None:
        rnd = random.Random(seed)
        rows = [
            (f"u{rnd.randrange(40)}", rnd.choice(tracks), day0 * DAY_US + rnd.randrange(2 * DAY_US), 1000) + (None,) * 5
            for _ in range(200)
        ]
        with svc.store.play_writer() as write:
            if overlap:
                entered.wait(timeout=30)
            write(rows, owners)

    threads = [threading.Thread(target=importer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    days, _per_track, everyone = _recount(svc, {t: ada for t in tracks}, day0, day0 + 1)
    stored = svc.store.artist_days(ada.id, first_day=day0, last_day=day0 + 1)
    assert {d: (p, n) for d, (p, n, _i) in stored.items()} == days[ada.id]
    assert sum(p for p, _n, _i in stored.values()) == 400
    assert svc.store.artist_listeners(ada.id, first_day=day0, last_day=day0 + 1) == everyone[ada.id]
