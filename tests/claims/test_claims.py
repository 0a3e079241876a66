"""Claims end to end: a caught copy is governed by the original artist's consent and claim policy."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.io import wavfile

from consentune.api import create_app
from consentune.claims import ClaimPolicy, ClaimStatus
from consentune.config import Settings
from consentune.errors import AccessDenied, Conflict
from consentune.ports import StoredMatch
from consentune.service import Consentune, open_service
from consentune.types import ArtistId, Purpose, Role, TrackId
from tests.identify.conftest import SAMPLE_RATE, song, speed_up

ACTOR = "admin:test"


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


def allowed(svc: Consentune, purpose: str, track: str) -> bool:
    return bool(svc.gate.decide(purpose=Purpose(purpose), tracks=[TrackId(track)]).allowed[0])


def test_a_caught_copy_follows_the_original_artists_choices_until_released(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Tape Pirate", actor=ACTOR)
    original = song(31, duration_s=30.0)
    mine = svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Pulse", actor=ACTOR).track
    copy = speed_up(original, 25, 26)  # a 1.04x "nightcore edit"
    theirs = svc.catalog.ingest(wav(copy), filename="b.wav", artist=pirate, title="Pulse nc", actor=ACTOR).track

    [claim] = svc.claims.claims(as_artist=ArtistId(ada.id))
    assert (claim.copy_track_id, claim.original_track_id, claim.status) == (theirs.id, mine.id, ClaimStatus.OPEN)
    assert not claim.partial and abs(claim.time_scale - 1.04) < 0.01
    assert svc.claims.claims(as_artist=ArtistId(pirate.id)) == [claim]  # the uploader sees it too

    # default policy "hold": the copy is neither streamed nor recommended while the claim is open
    assert allowed(svc, "stream", mine.id) and not allowed(svc, "stream", theirs.id)
    assert allowed(svc, "recommend", mine.id) and not allowed(svc, "recommend", theirs.id)
    reason = svc.gate.decide(purpose=Purpose("stream"), tracks=[theirs.id]).reason_text(0)
    assert "held until the claim is resolved" in reason
    # integrity purposes keep the copy's own answer, so it stays findable
    assert allowed(svc, "identify", theirs.id)

    # AI purposes follow the original: the pirate's yes cannot override Ada's no
    svc.consent.set(pirate, purpose=Purpose("train-ai"), allow=True, actor=ACTOR)
    svc.consent.set(pirate, purpose=Purpose("organize"), allow=True, actor=ACTOR)
    svc.consent.set(ada, purpose=Purpose("organize"), allow=False, actor=ACTOR)
    assert not allowed(svc, "train-ai", theirs.id)  # opt-in Ada never gave
    assert not allowed(svc, "organize", theirs.id)
    svc.consent.set(ada, purpose=Purpose("train-ai"), allow=True, actor=ACTOR)
    assert allowed(svc, "train-ai", theirs.id)

    # Ada allows copies (credited to her): streamed again, and her own "off" still binds
    svc.claims.set_policy(ArtistId(ada.id), ClaimPolicy.ALLOW, actor=ACTOR)
    assert allowed(svc, "stream", theirs.id) and allowed(svc, "recommend", theirs.id)
    svc.consent.set(ada, purpose=Purpose("recommend"), allow=False, actor=ACTOR)
    assert not allowed(svc, "recommend", theirs.id)
    svc.claims.set_policy(ArtistId(ada.id), ClaimPolicy.HOLD, actor=ACTOR)

    # who may move the claim
    with pytest.raises(AccessDenied):
        svc.claims.dispute(claim.id, reason="mine", actor="artist:x", as_artist=ArtistId(ada.id))
    with pytest.raises(AccessDenied):
        svc.claims.resolve(claim.id, outcome="release", actor="artist:x", as_artist=ArtistId(pirate.id))
    disputed = svc.claims.dispute(claim.id, reason="I licensed it", actor="artist:p", as_artist=ArtistId(pirate.id))
    assert disputed.status is ClaimStatus.DISPUTED and disputed.dispute_reason == "I licensed it"
    assert not allowed(svc, "stream", theirs.id)  # still governed while disputed
    upheld = svc.claims.resolve(claim.id, outcome="uphold", actor="artist:a", as_artist=ArtistId(ada.id))
    assert upheld.status is ClaimStatus.UPHELD
    assert "does not allow copies" in svc.gate.decide(purpose=Purpose("stream"), tracks=[theirs.id]).reason_text(0)
    with pytest.raises(Conflict):
        svc.claims.dispute(claim.id, reason="again", actor="artist:p", as_artist=ArtistId(pirate.id))

    # released: the copy is the uploader's again
    svc.claims.resolve(claim.id, outcome="release", actor=ACTOR, as_artist=None)
    assert allowed(svc, "stream", theirs.id) and allowed(svc, "organize", theirs.id)

    # every step is on both tracks' ledger trail
    for track in (mine.id, theirs.id):
        actions = [e.action for e in svc.ledger.track_entries(track=track, purpose="identify", limit=100)]
        for step in ("claim-open", "claim-dispute", "claim-uphold", "claim-release"):
            assert step in actions, (track, step, actions)


def test_copies_from_an_account_that_uploaded_many_copies_first_are_all_claimed(sqlite_svc: Consentune) -> None:
    svc = sqlite_svc
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Pirate", actor=ACTOR)
    original = song(41, duration_s=30.0)
    svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Orig", actor=ACTOR)
    variants = [
        original * 0.5,
        original[: 20 * SAMPLE_RATE],
        original[5 * SAMPLE_RATE :],
        speed_up(original, 25, 26),
        speed_up(original, 26, 25),
        speed_up(original, 50, 51),
        original * np.linspace(0.2, 1.0, original.size, dtype=np.float32),
        original[2 * SAMPLE_RATE : 28 * SAMPLE_RATE] * 0.8,
        speed_up(original[3 * SAMPLE_RATE :], 49, 50),
        np.clip(original * 1.6, -1, 1),
    ]
    copies = [
        svc.catalog.ingest(wav(v), filename=f"c{i}.wav", artist=pirate, title=f"c{i}", actor=ACTOR).track
        for i, v in enumerate(variants)
    ]
    claimed = {c.copy_track_id for c in svc.claims.claims(as_artist=ArtistId(ada.id), limit=100)}
    assert claimed == {c.id for c in copies}, f"{len(claimed)}/10 copies claimed"
    assert all(not allowed(svc, "stream", c.id) for c in copies)


def test_claims_through_the_api_respect_who_may_do_what(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Pirate", actor=ACTOR)
    carol = svc.catalog.add_artist("Carol", actor=ACTOR)
    original = song(51, duration_s=30.0)
    mine = svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Orig", actor=ACTOR).track
    svc.catalog.ingest(wav(speed_up(original, 25, 26)), filename="b.wav", artist=pirate, title="nc", actor=ACTOR)
    keys = {a.name: svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(a.id))[1] for a in (ada, pirate, carol)}
    client = TestClient(create_app(svc))

    def h(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    [claim] = client.get("/v1/claims", headers=h("Ada")).json()
    assert claim["original_title"] == "Orig" and claim["copy_artist"] == "Pirate" and claim["status"] == "open"
    assert client.get("/v1/claims", headers=h("Carol")).json() == []
    assert client.get(f"/v1/claims/{claim['id']}", headers=h("Carol")).status_code == 404
    assert client.post(f"/v1/claims/{claim['id']}/dispute", json={"reason": "x"}, headers=h("Ada")).status_code == 403
    ok = client.post(f"/v1/claims/{claim['id']}/dispute", json={"reason": "licensed"}, headers=h("Pirate"))
    assert ok.status_code == 200 and ok.json()["status"] == "disputed"
    bad = client.post(f"/v1/claims/{claim['id']}/resolve", json={"outcome": "release"}, headers=h("Pirate"))
    assert bad.status_code == 403 and set(bad.json()["error"]) == {"code", "message", "hint"}
    assert client.put("/v1/me/claim-policy", json={"policy": "block"}, headers=h("Ada")).json() == {"policy": "block"}
    assert client.get("/v1/me/claim-policy", headers=h("Ada")).json() == {"policy": "block"}
    done = client.post(f"/v1/claims/{claim['id']}/resolve", json={"outcome": "uphold"}, headers=h("Ada"))
    assert done.status_code == 200 and done.json()["status"] == "upheld"
    again = client.post(f"/v1/claims/{claim['id']}/resolve", json={"outcome": "uphold"}, headers=h("Ada"))
    assert again.status_code == 409
    assert allowed(svc, "stream", mine.id)


def test_listeners_do_not_find_a_held_copy_until_the_claim_is_released(svc: Consentune) -> None:
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"}
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Pirate", actor=ACTOR)
    original = song(61, duration_s=30.0)
    mine = svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Glow", actor=ACTOR).track
    copy = svc.catalog.ingest(
        wav(speed_up(original, 25, 26)), filename="b.wav", artist=pirate, title="Glow nightcore", actor=ACTOR
    ).track
    others = [
        svc.catalog.ingest(wav(song(70 + n, duration_s=12.0)), filename=f"{n}.wav", artist=ada,
                           title=f"Glow {n}", actor=ACTOR).track.id
        for n in range(3)
    ]  # fmt: skip
    [claim] = svc.claims.claims(as_artist=ArtistId(ada.id))
    client = TestClient(create_app(svc))

    def walk(limit: int) -> list[str]:
        seen: list[str] = []
        url: str | None = f"/v1/listen/catalog?limit={limit}"
        while url:
            page = client.get(url, headers=browser)
            assert page.status_code == 200
            seen += [row["id"] for row in page.json()]
            url = page.links.get("next", {}).get("url")
        return seen

    for limit in (1, 2, 5):  # pages skip the held copy without losing or repeating a listed track
        assert walk(limit) == [mine.id, *others]
    found = [row["id"] for row in client.get("/v1/listen/search?q=glow", headers=browser).json()]
    assert copy.id not in found and mine.id in found

    svc.claims.resolve(claim.id, outcome="release", actor=ACTOR, as_artist=None)
    assert walk(2) == [mine.id, copy.id, *others]
    found = [row["id"] for row in client.get("/v1/listen/search?q=nightcore", headers=browser).json()]
    assert found == [copy.id]


def test_a_copy_of_a_copy_is_claimed_by_the_original_artist_not_the_first_copier(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Pirate", actor=ACTOR)
    mallory = svc.catalog.add_artist("Mallory", actor=ACTOR)
    original = song(81, duration_s=30.0)
    mine = svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Tide", actor=ACTOR).track
    nightcore = speed_up(original, 25, 26)
    first = svc.catalog.ingest(wav(nightcore), filename="b.wav", artist=pirate, title="Tide nc", actor=ACTOR).track
    again = svc.catalog.ingest(
        wav(0.8 * nightcore[SAMPLE_RATE * 2 :]), filename="c.wav", artist=mallory, title="Tide nc2", actor=ACTOR
    ).track
    theirs = svc.claims.claims(as_artist=ArtistId(mallory.id))
    assert [(c.copy_track_id, c.original_track_id) for c in theirs] == [(again.id, mine.id)]
    assert not svc.claims.claims(as_artist=ArtistId(pirate.id), track=again.id)  # the first copier has no say
    [claim] = theirs
    assert abs(claim.time_scale - 1.04) < 0.02 and claim.original_artist_id == ada.id
    assert not allowed(svc, "stream", again.id) and not allowed(svc, "stream", first.id)


def test_every_public_answer_about_a_copy_follows_its_claim_at_once(svc: Consentune) -> None:
    """Through the public API, per purpose: streaming, AI-use signals, organize reads, the consent view."""
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"}
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    pirate = svc.catalog.add_artist("Pirate", actor=ACTOR)
    original = song(91, duration_s=30.0)
    svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Ember", actor=ACTOR)
    copy = svc.catalog.ingest(
        wav(speed_up(original, 25, 26)), filename="b.wav", artist=pirate, title="Ember nc", actor=ACTOR
    ).track
    for purpose in ("train-ai", "train-generative", "ai-input"):  # the uploader says yes to every AI use
        svc.consent.set(pirate, purpose=Purpose(purpose), allow=True, actor=ACTOR)
    svc.consent.set(ada, purpose=Purpose("organize"), allow=False, actor=ACTOR)
    [claim] = svc.claims.claims(as_artist=ArtistId(ada.id))
    service_key = {"Authorization": f"Bearer {svc.keys.create(role=Role.SERVICE)[1]}"}
    pirate_key = {"Authorization": f"Bearer {svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(pirate.id))[1]}"}
    client = TestClient(create_app(svc), raise_server_exceptions=False)
    account = client.post("/v1/listen/accounts", headers=browser).json()["token"]
    session = client.post("/v1/listen/sessions", headers={**browser, "Authorization": f"Bearer {account}"}).json()
    listener = {**browser, "X-Session-Token": session["session_token"]}

    def answers() -> dict[str, object]:
        page = client.get(f"/v1/listen/tracks/{copy.id}", headers=browser)
        return {
            "stream": client.post(f"/v1/listen/tracks/{copy.id}/play", headers=listener).status_code,
            "tdm-reservation": page.headers.get("tdm-reservation"),
            "content-usage": page.headers.get("content-usage"),
            "organize": client.get(f"/v1/tracks/{copy.id}/descriptors", headers=service_key).status_code,
            "pirate's view": client.get(f"/v1/tracks/{copy.id}", headers=pirate_key).status_code,
        }

    held = answers()
    assert held["stream"] == 403 and held["tdm-reservation"] == "1" and held["organize"] == 403
    assert held["pirate's view"] == 200  # the uploader still sees their upload (and the claim on it)
    svc.claims.resolve(claim.id, outcome="release", actor=ACTOR, as_artist=None)
    released = answers()
    assert released["stream"] == 200 and released["tdm-reservation"] == "0"
    assert released["organize"] in (200, 404)  # allowed now (404: not analysed yet, never a refusal)
    assert released["content-usage"] != held["content-usage"]


def _match(copy: str, original: str, score: float, start: float, end: float) -> StoredMatch:
    return StoredMatch(TrackId(copy), TrackId(original), score, 50, start, end, start, end, 1.0, 0.0,
                       datetime.now(UTC))  # fmt: skip


@pytest.fixture
def quiet_svc(tmp_path: Path) -> Iterator[Consentune]:
    """A service that does not check uploads itself: the test hands the claims service its matches."""
    service = open_service(
        Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", identify_at_ingest=False)
    )
    yield service
    service.close()


def test_a_weak_match_inside_a_much_stronger_one_opens_no_claim_but_a_mix_and_a_mashup_do(
    quiet_svc: Consentune,
) -> None:
    svc = quiet_svc
    owners = [svc.catalog.add_artist(name, actor=ACTOR) for name in ("Ada", "Bo", "Cy", "Uploader")]
    a, b, c, upload = (
        svc.catalog.ingest(wav(song(60 + i, duration_s=12.0)), filename=f"{i}.wav", artist=artist, title=None,
                           actor=ACTOR).track.id
        for i, artist in enumerate(owners)
    )  # fmt: skip

    # the whole upload is Ada's track (score 120); 12 s inside it also "match" Bo's at 9.3: a coincidence
    opened = svc.claims.open_from_matches(upload, [_match(upload, a, 120.0, 0, 180), _match(upload, b, 9.3, 40, 52)],
                                          actor=ACTOR)  # fmt: skip
    assert [(x.original_track_id, x.score) for x in opened] == [(a, 120.0)]

    # a DJ mix: Ada's track, then Bo's, then Cy's - three claims, however different their strength
    mix = svc.catalog.ingest(wav(song(70, duration_s=12.0)), filename="mix.wav", artist=owners[3], title=None,
                             actor=ACTOR).track.id  # fmt: skip
    opened = svc.claims.open_from_matches(
        mix,
        [_match(mix, a, 120.0, 0, 180), _match(mix, b, 9.3, 185, 300), _match(mix, c, 20.0, 300, 420)],
        actor=ACTOR,
    )
    assert {x.original_track_id for x in opened} == {a, b, c}

    # a mashup: Bo's and Cy's tracks over the same minute, comparably strong - both claimed
    mashup = svc.catalog.ingest(wav(song(71, duration_s=12.0)), filename="mash.wav", artist=owners[3], title=None,
                                actor=ACTOR).track.id  # fmt: skip
    opened = svc.claims.open_from_matches(mashup, [_match(mashup, b, 30.0, 0, 60), _match(mashup, c, 12.0, 0, 60)],
                                          actor=ACTOR)  # fmt: skip
    assert {x.original_track_id for x in opened} == {b, c}
