"""Claims on the dashboard: cards in words for both artists, and the operator's confirm/dismiss queue."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.claims import ClaimStatus
from consentune.service import Consentune
from consentune.types import ArtistId, Purpose, Role
from tests.claims.test_claims import ACTOR, wav
from tests.identify.conftest import song, speed_up

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _signed_in(svc: Consentune, key: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(svc))
    token = LOGIN_TOKEN.search(client.get("/dashboard/sign-in").text)
    assert token is not None
    landing = client.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": token.group(1)})
    csrf = CSRF_META.search(landing.text)
    assert csrf is not None
    return client, csrf.group(1)


def test_both_artists_and_the_operator_see_and_move_the_claim_in_words(sqlite_svc: Consentune) -> None:
    svc = sqlite_svc
    ada = svc.catalog.add_artist("Night Sequencers", actor=ACTOR)
    pirate = svc.catalog.add_artist("Tape Pirate", actor=ACTOR)
    original = song(61, duration_s=30.0)
    svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title="Pulse Grid", actor=ACTOR)
    copy = svc.catalog.ingest(
        wav(speed_up(original, 25, 26)), filename="b.wav", artist=pirate, title="Pulse Grid (nightcore)", actor=ACTOR
    ).track
    [claim] = svc.claims.claims(as_artist=None)

    ada_key = svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(ada.id))[1]
    pirate_key = svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(pirate.id))[1]
    admin_key = svc.keys.create(role=Role.ADMIN)[1]

    owner, owner_csrf = _signed_in(svc, ada_key)
    page = owner.get(f"/dashboard/artists/{ada.id}").text
    assert "“Pulse Grid (nightcore)”, uploaded by Tape Pirate, copies your “Pulse Grid”" in page
    assert "played 4 % faster" in page and "not streamed or recommended until the claim is resolved" in page
    assert "query_start_s" not in page and "Uphold: it copies my track" in page

    uploader, uploader_csrf = _signed_in(svc, pirate_key)
    page = uploader.get(f"/dashboard/artists/{pirate.id}").text
    assert "Your upload “Pulse Grid (nightcore)” is claimed by Night Sequencers" in page
    assert "Dispute this claim" in page and "Uphold" not in page
    done = uploader.post(
        f"/dashboard/claims/{claim.id}/dispute", data={"reason": "I made this edit", "csrf_token": uploader_csrf}
    )
    assert done.status_code == 200 and "the claim is now disputed" in done.text
    assert svc.claims.claim(claim.id, as_artist=None).status is ClaimStatus.DISPUTED
    # the uploader cannot resolve their own copy's claim
    refused = uploader.post(
        f"/dashboard/claims/{claim.id}/resolve", data={"outcome": "release", "csrf_token": uploader_csrf}
    )
    assert refused.status_code == 403

    operator, operator_csrf = _signed_in(svc, admin_key)
    queue = operator.get("/dashboard/operator").text
    assert "Claims queue" in queue and "Confirm: it is a copy" in queue and "I made this edit" in queue
    confirmed = operator.post(
        f"/dashboard/claims/{claim.id}/resolve", data={"outcome": "uphold", "csrf_token": operator_csrf}
    )
    assert confirmed.status_code == 200 and "the claim is now upheld" in confirmed.text
    assert not svc.gate.decide(purpose=Purpose("stream"), tracks=[copy.id]).allowed[0]

    # Ada lets copies play, credited to her: the copy streams again while the claim stands
    saved = owner.post(f"/dashboard/artists/{ada.id}/claim-policy", data={"policy": "allow", "csrf_token": owner_csrf})
    assert saved.status_code == 200 and "Saved: your choice for copies" in saved.text
    assert svc.gate.decide(purpose=Purpose("stream"), tracks=[copy.id]).allowed[0]
