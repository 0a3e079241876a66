"""Play import is idempotent: a play already stored (same user, time, track) is neither stored nor counted again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentune.service import Consentune
from consentune.types import PlayEvent, TrackId
from tests.shield.test_public_catalog import add_track

HEADER = "user_id,track_id,played_at,ms_played,ip,device_id,user_agent,country\n"
START = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86_400


def _stored(svc: Consentune, tracks: list[TrackId]) -> list[tuple[str, str, datetime]]:
    return sorted((p.user_id, p.track_id, p.played_at) for page in svc.store.iter_plays(tracks) for p in page)


def _rollups(svc: Consentune, tracks: list[TrackId], artist: str) -> tuple[object, ...]:
    first = int(START.timestamp()) // DAY - 2
    last = first + 30
    totals = svc.store.track_totals(tracks, first_day=first, last_day=last)
    days = svc.store.artist_days(artist, first_day=first, last_day=last)  # type: ignore[arg-type]
    listeners = svc.store.artist_listeners(artist, first_day=first, last_day=last)  # type: ignore[arg-type]
    return totals, days, listeners


def test_a_file_imported_twice_is_stored_and_counted_once(svc: Consentune, tmp_path: Path) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    tracks = [add_track(svc, ada, f"Song {n}").id for n in range(5)]
    for seed in range(3):  # a family of files: sizes, repeats and listeners vary
        rnd = random.Random(seed)
        count = rnd.randrange(50, 400)
        times = [(START + timedelta(seconds=rnd.randrange(20 * DAY))).isoformat() for _ in range(count)]
        lines = [f"u{rnd.randrange(1, 30)},{rnd.choice(tracks)},{at},1000,,,," for at in times]
        repeats = rnd.sample(lines, k=rnd.randrange(1, 10))  # the same play twice in one file
        path = tmp_path / f"plays{seed}.csv"
        path.write_text(HEADER + "\n".join(lines + repeats) + "\n")
        distinct = len(set(lines + repeats))
        before = _stored(svc, tracks)
        first = svc.plays.import_file(path)
        assert first.imported == len(lines) + len(repeats) and first.rejected == 0
        assert first.duplicates == len(lines) + len(repeats) - distinct
        stored, counted = _stored(svc, tracks), _rollups(svc, tracks, ada.id)
        assert len(stored) == len(before) + distinct
        again = svc.plays.import_file(path)
        assert (again.imported, again.duplicates) == (first.imported, first.imported)
        assert _stored(svc, tracks) == stored
        assert _rollups(svc, tracks, ada.id) == counted
    totals = svc.store.track_totals(tracks, first_day=0, last_day=10**6)
    assert sum(p for p, _i in totals.values()) == len(_stored(svc, tracks))


def test_a_retried_api_batch_stores_nothing_twice(svc: Consentune) -> None:
    from fastapi.testclient import TestClient

    from consentune.api import create_app
    from consentune.types import Role

    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    track = add_track(svc, ada, "Song").id
    key = svc.keys.create(role=Role.SERVICE)[1]
    client = TestClient(create_app(svc))
    body = {"plays": [{"user_id": f"u{n}", "track_id": track, "played_at": "2026-11-01T10:00:00Z", "ms_played": 1000}
                      for n in range(3)]}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    first = client.post("/v1/plays", json=body, headers=headers).json()
    second = client.post("/v1/plays", json=body, headers=headers).json()
    assert (first["imported"], first["duplicates"]) == (3, 0)
    assert (second["imported"], second["duplicates"]) == (3, 3)
    assert len(_stored(svc, [track])) == 3


def test_odd_values_and_days_before_1970_round_trip(svc: Consentune) -> None:
    """Backslashes, tabs, newlines and NULLs survive the bulk path; rollup days floor below the epoch."""
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    track = add_track(svc, ada, "Song").id
    odd = [
        PlayEvent("u\\1", track, START, 1000, None, "dev\\N", "agent\twith tab", None),
        PlayEvent("u2", track, START, 1000, "192.0.2.1", None, "line\nbreak \\ \r", "FR"),
        PlayEvent("u3", track, datetime(1969, 12, 31, 12, tzinfo=UTC), 5, None, None, None, None),
        PlayEvent("u4", track, START, 7, None, "\\N", None, None, START - timedelta(days=400)),
    ]
    assert svc.store.add_plays(odd) == 4
    assert svc.store.add_plays(odd) == 0
    plain = [
        PlayEvent(f"v{n}", track, START + timedelta(seconds=n), n, None, f"d{n}\\x", None, None) for n in range(50)
    ]
    assert svc.store.add_plays(plain) == 50
    got = {p.user_id: p for page in svc.store.iter_plays([track]) for p in page}
    for event in [*odd, *plain]:
        stored = got[event.user_id]
        assert (stored.device_id, stored.user_agent, stored.ip, stored.country) == (
            event.device_id, event.user_agent, event.ip, event.country
        )  # fmt: skip
        assert (stored.played_at, stored.ms_played, stored.account_created_at) == (
            event.played_at, event.ms_played, event.account_created_at
        )  # fmt: skip
    before_epoch = svc.store.track_totals([track], first_day=-1, last_day=-1)
    assert before_epoch[track][0] == 1


def test_the_migration_folds_plays_stored_twice_before_it(database_url: str) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from consentune.storage import make_engine, migrate

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(resources.files("consentune.storage") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007_jobs")
    insert = text(
        "INSERT INTO plays (user_id, track_id, played_us, ms_played) VALUES (:u, :t, :p, :m)"
    )  # the table has no foreign key to tracks: history may name tracks removed since
    rows = [{"u": "u1", "t": "trk_a", "p": 10, "m": 1}, {"u": "u1", "t": "trk_a", "p": 10, "m": 2},
            {"u": "u1", "t": "trk_b", "p": 10, "m": 3}, {"u": "u2", "t": "trk_a", "p": 10, "m": 4}]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert, rows)
    migrate(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT user_id, track_id, ms_played FROM plays ORDER BY ms_played")).all()
    engine.dispose()
    assert [tuple(r) for r in kept] == [("u1", "trk_a", 1), ("u1", "trk_b", 3), ("u2", "trk_a", 4)]
