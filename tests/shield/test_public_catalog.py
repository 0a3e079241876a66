"""Listener request paths read the database per request: keyset pages, the full-text index, per-track policy."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text

from consentune.api import create_app
from consentune.service import Consentune
from consentune.shield.listen import search_words
from consentune.types import Artist, Purpose, Track, TrackId

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def add_track(svc: Consentune, artist: Artist, title: str) -> Track:
    """A catalogue row without audio: these paths read rows, never content."""
    sha = hashlib.sha256(f"{artist.id}/{title}".encode()).hexdigest()
    track = Track(TrackId(f"trk_{sha[:16]}"), artist.id, title, sha, "flac", 60.0, 44_100, 2, 1000, datetime.now(UTC))
    stored, created = svc.store.add_track(track, filename="x.flac", actor="test")
    assert created
    return stored


def delete_track(svc: Consentune, track_id: str) -> None:
    with svc.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM uploads WHERE track_id = :id"), {"id": track_id})
        conn.execute(text("DELETE FROM tracks WHERE id = :id"), {"id": track_id})


def all_pages(svc: Consentune, *, limit: int) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    offset: int | None = 0
    while offset is not None:
        page, offset = svc.listen.catalog_page(offset=offset, limit=limit)
        seen.extend((i, t.id) for i, t in page)
    return seen


def test_keyset_pages_cover_the_catalogue_once_in_upload_order(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    ids = [add_track(svc, ada, f"Song {n}").id for n in range(23)]
    pages = all_pages(svc, limit=5)
    assert [t for _i, t in pages] == ids
    assert [i for i, _t in pages] == list(range(23))
    assert svc.listen.indexed(ids[7]) == (7, svc.catalog.track(ids[7]))
    # a track removed between pages leaves a gap, not a repeat; a new one comes last
    first, _next = svc.listen.catalog_page(offset=0, limit=5)
    delete_track(svc, ids[6])
    late = add_track(svc, ada, "Late").id
    rest = all_pages(svc, limit=5)[5:]
    walked = [t.id for _i, t in first] + [t for _i, t in rest]
    assert walked == [*ids[:6], *ids[7:], late]


def test_search_uses_the_full_text_index_and_follows_renames_and_deletes(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada Lovelace", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    monday = add_track(svc, ada, "Blue Monday")
    blues = add_track(svc, bo, "Blues Brothers")
    rain = add_track(svc, bo, "Red Rain")

    def found(query: str) -> list[str]:
        return [t.id for _i, t in svc.listen.search(query, limit=20)]

    assert found("blue") == [monday.id, blues.id]  # the last word is a prefix
    assert found("Monday BLUE") == [monday.id]  # every word must match, any case
    assert found("lovelace") == [monday.id]  # the artist's name counts
    assert found("ain") == [] and found("zzz") == [] and found("!!") == []
    assert found("blue") == [monday.id, blues.id]
    with svc.store.engine.begin() as conn:
        conn.execute(text("UPDATE tracks SET title = 'Purple Rain' WHERE id = :id"), {"id": rain.id})
        conn.execute(text("UPDATE artists SET name = 'Bo Diddley' WHERE id = :id"), {"id": bo.id})
    delete_track(svc, monday.id)
    assert found("red") == []
    assert found("purple rain") == [rain.id]
    assert found("diddley") == [blues.id, rain.id]
    assert found("blue") == [blues.id]


def test_search_answers_the_same_from_the_first_tracks_or_the_whole_index(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    songs = [add_track(svc, ada, f"Song {n}").id for n in range(6)]
    for scan in (1, 3, 2000):  # too few hits among the first `scan` tracks falls back to the index
        assert [e.track.id for e in svc.store.search_catalog(["song"], limit=2, scan=scan)] == songs[:2]
        assert [e.track.id for e in svc.store.search_catalog(["so"], limit=10, scan=scan)] == songs


def test_search_words_keep_only_letters_and_digits() -> None:
    assert search_words("Don't STOP_me now!! 2") == ["don", "t", "stop", "me", "now", "2"]
    assert search_words("'\") OR 1=1 --*") == ["or", "1", "1"]


def test_track_policy_is_cached_until_its_artists_consent_changes(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    song, other = add_track(svc, ada, "Song"), add_track(svc, bo, "Other")
    policy = svc.listen.policy
    first = policy.track_policy(song)
    assert not first.allows("train-ai")
    assert policy.track_policy(song) is first  # cached
    bo_before = policy.track_policy(other)
    svc.consent.set(ada, purpose=Purpose("train-ai"), allow=True, actor="artist:ada")
    assert policy.track_policy(song).allows("train-ai")  # the change itself invalidates
    assert policy.track_policy(other) is bo_before  # another artist's change leaves Bo's entry alone
    svc.consent.set(ada, purpose=Purpose("train-ai"), allow=False, actor="artist:ada", track=song.id)
    assert not policy.track_policy(song).allows("train-ai")


def test_robots_and_tdmrep_carry_etags_and_answer_304(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    add_track(svc, ada, "Song")
    with TestClient(create_app(svc)) as client:
        first = client.get("/robots.txt")
        etag = first.headers["etag"]
        assert first.status_code == 200 and "max-age=" in first.headers["cache-control"]
        assert "Allow: /v1/listen/tracks/" not in first.text
        again = client.get("/robots.txt", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
        tdm = client.get("/.well-known/tdmrep.json")
        assert client.get("/.well-known/tdmrep.json", headers={"If-None-Match": tdm.headers["etag"]}).status_code == 304
        svc.consent.set(ada, purpose=Purpose("train-ai"), allow=True, actor="artist:ada")
        changed = client.get("/robots.txt", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert "Allow: /v1/listen/tracks/" in changed.text


def test_catalog_endpoint_links_the_next_page(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    for n in range(5):
        add_track(svc, ada, f"Song {n}")
    with TestClient(create_app(svc)) as client:
        first = client.get("/v1/listen/catalog?limit=3", headers={"User-Agent": BROWSER})
        assert [row["index"] for row in first.json()] == [0, 1, 2] and first.json()[0]["artist"] == "Ada"
        assert first.links["next"]["url"].endswith("offset=3&limit=3")
        second = client.get("/v1/listen/catalog?offset=3&limit=3", headers={"User-Agent": BROWSER})
        assert [row["index"] for row in second.json()] == [3, 4] and "link" not in second.headers
        found = client.get("/v1/listen/search?q=song", headers={"User-Agent": BROWSER}).json()
        assert len(found) == 5
