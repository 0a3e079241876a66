"""The dashboard in-process: sessions, CSRF, authorization, capability sections, reach numbers, plots."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.ledger import verify_receipt_pages
from consentune.service import Consentune
from consentune.types import ArtistId, PlayEvent, Purpose, Role, TrackId
from consentune.web import session as sessions
from consentune.web import views
from consentune.web.plots import bar_chart

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    svc: Consentune
    app: FastAPI
    keys: dict[str, str]
    tracks: dict[str, list[str]]


@pytest.fixture
def site(svc: Consentune, audio_files: dict[str, bytes]) -> Iterator[Site]:
    tracks: dict[str, list[str]] = {}
    for name, fmts in (("Ada", ("wav", "flac")), ("Bo", ("mp3",))):
        artist = svc.catalog.add_artist(name, actor="admin:test")
        tracks[name] = [
            svc.catalog.ingest(audio_files[f], filename=f"a.{f}", artist=artist, title=f, actor="admin:test").track.id
            for f in fmts
        ]
    keys = {
        "admin": svc.keys.create(role=Role.ADMIN)[1],
        "service": svc.keys.create(role=Role.SERVICE)[1],
        **{
            name: svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(svc.catalog.artist(name).id))[1]
            for name in tracks
        },
    }
    yield Site(svc, create_app(svc), keys, tracks)


def _client(site: Site) -> TestClient:
    return TestClient(site.app, raise_server_exceptions=True)


def _sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; return the session's CSRF token."""
    form = client.get("/dashboard/sign-in")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    landing = client.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": token.group(1)})
    assert landing.status_code == 200, landing.text
    found = CSRF_META.search(landing.text)
    assert found is not None
    return found.group(1)


def test_session_cookie_is_httponly_strict_and_tamper_proof(site: Site) -> None:
    client = _client(site)
    form = client.get("/dashboard/sign-in")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    response = client.post(
        "/dashboard/sign-in", data={"api_key": site.keys["Ada"], "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(sessions.SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and site.keys["Ada"] not in cookie
    value = client.cookies[sessions.SESSION_COOKIE]
    key = site.svc.session_key
    assert sessions.unseal(key, value, now=datetime.now(UTC).timestamp()) is not None
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert sessions.unseal(key, forged, now=datetime.now(UTC).timestamp()) is None
    later = datetime.now(UTC).timestamp() + sessions.SESSION_MAX_AGE_S + 1
    assert sessions.unseal(key, value, now=later) is None
    client.cookies.set(sessions.SESSION_COOKIE, forged)
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/sign-in"


def test_sign_in_needs_the_login_token_and_refuses_service_keys(site: Site) -> None:
    client = _client(site)
    client.get("/dashboard/sign-in")
    assert client.post("/dashboard/sign-in", data={"api_key": site.keys["Ada"], "csrf_token": "x"}).status_code == 400
    form = client.get("/dashboard/sign-in")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    refused = client.post("/dashboard/sign-in", data={"api_key": site.keys["service"], "csrf_token": token.group(1)})
    assert refused.status_code == 403
    assert sessions.SESSION_COOKIE not in client.cookies


def test_state_changes_need_the_csrf_token_and_same_site(site: Site) -> None:
    client = _client(site)
    csrf = _sign_in(client, site.keys["Ada"])
    ada = site.svc.catalog.artist("Ada")
    url = f"/dashboard/artists/{ada.id}/consent"
    form = {"purpose": "recommend", "choice": "off"}
    assert client.post(url, data={**form, "csrf_token": "forged"}).status_code == 403
    assert (
        client.post(url, data={**form, "csrf_token": csrf}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    )
    assert site.svc.consent.view(ada).purposes[0].artist_rule is None  # nothing was written
    assert client.post(url, data={**form, "csrf_token": csrf}).status_code == 200
    view = {p.purpose: p for p in site.svc.consent.view(ada).purposes}
    assert view["recommend"].effective_default is False


def test_revoking_the_key_ends_the_session_and_sign_out_clears_it(site: Site) -> None:
    client = _client(site)
    csrf = _sign_in(client, site.keys["Ada"])
    ada = site.svc.catalog.artist("Ada")
    assert client.get(f"/dashboard/artists/{ada.id}").status_code == 200
    client.post("/dashboard/sign-out", data={"csrf_token": csrf})
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/sign-in"
    _sign_in(client, site.keys["Ada"])
    key_id = site.keys["Ada"].split("_")[1]
    site.svc.keys.revoke(key_id)
    assert client.get(f"/dashboard/artists/{ada.id}", follow_redirects=False).status_code == 303


def test_an_artist_sees_only_their_own_pages(site: Site) -> None:
    client = _client(site)
    _sign_in(client, site.keys["Ada"])
    bo = site.svc.catalog.artist("Bo")
    bo_track = site.tracks["Bo"][0]
    assert client.get(f"/dashboard/artists/{bo.id}").status_code == 403
    assert client.get(f"/dashboard/artists/{bo.id}/reach").status_code == 403
    for path in (f"/dashboard/tracks/{bo_track}", f"/dashboard/tracks/{bo_track}/receipt"):
        response = client.get(path)
        visible = re.sub(r'(value|content)="[^"]*"', "", response.text)  # the random CSRF token may spell "Bo"
        assert response.status_code == 404 and not re.search(r"\bBo\b", visible)
    assert client.get("/dashboard/operator").status_code == 403
    ada_page = client.get(f"/dashboard/artists/{site.svc.catalog.artist('Ada').id}")
    assert all(t in ada_page.text for t in site.tracks["Ada"]) and bo_track not in ada_page.text


def test_the_json_api_accepts_a_session_only_with_its_csrf_header(site: Site) -> None:
    client = _client(site)
    csrf = _sign_in(client, site.keys["Ada"])
    assert client.get("/v1/me").status_code == 401
    assert client.get("/v1/me", headers={"X-CSRF-Token": "forged"}).status_code == 401
    me = client.get("/v1/me", headers={"X-CSRF-Token": csrf})
    assert me.status_code == 200 and me.json()["artist"]["name"] == "Ada"
    bo_track = site.tracks["Bo"][0]
    assert client.get(f"/v1/tracks/{bo_track}", headers={"X-CSRF-Token": csrf}).status_code == 404


def test_capability_sections_appear_only_when_the_route_exists(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from consentune.web import capabilities

    client = _client(site)
    _sign_in(client, site.keys["Ada"])
    assert {"fraud-alerts", "fraud-queue"} <= set(client.get("/v1/capabilities").json()["optional"])
    artist_page = client.get(f"/dashboard/artists/{site.svc.catalog.artist('Ada').id}").text
    assert 'data-capability="fraud-alerts" data-endpoint="/v1/fraud/alerts"' in artist_page

    future = capabilities.Capability(
        key="lyrics", title="Lyrics", route="/v1/tracks/{track_id}/lyrics", scope="track",
        summary="What a future capability would show.", missing="Lyrics are not enabled on this server.",
    )  # fmt: skip
    monkeypatch.setattr(capabilities, "OPTIONAL", (*capabilities.OPTIONAL, future))
    track = site.tracks["Ada"][0]
    page = client.get(f"/dashboard/tracks/{track}").text
    assert 'data-capability="lyrics">' in page and "Lyrics are not enabled" in page
    assert "lyrics" not in client.get("/v1/capabilities").json()["optional"]

    @site.app.get("/v1/tracks/{track_id}/lyrics")
    def lyrics(track_id: str) -> list[dict[str, str]]:
        return []

    site.app.openapi_schema = None  # routes are fixed at start-up in a real server; this test adds one
    page = client.get(f"/dashboard/tracks/{track}").text
    assert f'data-capability="lyrics" data-endpoint="/v1/tracks/{track}/lyrics"' in page
    assert "lyrics" in client.get("/v1/capabilities").json()["optional"]


def test_operator_console_lists_terms_checkpoints_purges_and_lifts_blocks(site: Site) -> None:
    from consentune.ports import ShieldRecord

    record = site.svc.store.record_shield_decision(
        ShieldRecord(0, datetime.now(UTC).timestamp(), "address:203.0.113.9", "block", 0.9, ())
    )
    ada = site.svc.catalog.artist("Ada")
    site.svc.consent.set(ada, purpose="organize", allow=False, actor="artist:test")  # type: ignore[arg-type]
    site.svc.ledger.checkpoint()
    client = _client(site)
    csrf = _sign_in(client, site.keys["admin"])
    page = client.get("/dashboard/operator").text
    assert "address:203.0.113.9" in page and "organize" in page and 'id="checkpoints"' in page
    lifted = client.post(f"/dashboard/operator/shield/{record}/lift", data={"csrf_token": csrf})
    assert lifted.status_code == 200 and "lifted" in lifted.text
    assert site.svc.listen.guard.decisions(action="block", active_only=True) == []


def test_reach_counts_plays_listeners_and_impressions_through_the_gate(site: Site) -> None:
    now = datetime.now(UTC)
    ada_tracks = site.tracks["Ada"]
    plays = [
        PlayEvent("u1", ada_tracks[0], now - timedelta(days=1), 30_000),
        PlayEvent("u2", ada_tracks[0], now - timedelta(days=1), 30_000),
        PlayEvent("u1", ada_tracks[1], now - timedelta(days=2), 30_000),
        PlayEvent("u3", ada_tracks[1], now - timedelta(days=45), 30_000),  # outside the window
        PlayEvent("u9", site.tracks["Bo"][0], now - timedelta(days=1), 30_000),  # another artist
    ]
    site.svc.store.add_plays(plays)
    site.svc.store.add_impressions([ada_tracks[1]], at=now)  # what serving a recommendation counts
    from consentune.auth import Principal
    from consentune.web.views import reach

    caller = Principal("k", Role.ARTIST, site.svc.catalog.artist("Ada").id)
    before = site.svc.ledger.size
    report = reach(site.svc, caller, site.svc.catalog.artist("Ada"), now=now)
    assert sum(report.plays) == 3 and report.total_listeners == 2 and sum(report.impressions) == 1
    assert {r.track.id: (r.plays, r.impressions) for r in report.tracks} == {
        ada_tracks[0]: (2, 0),
        ada_tracks[1]: (1, 1),
    }
    logged = site.svc.ledger.entries(range(before, site.svc.ledger.size))
    assert {(e.action, e.purpose, e.track) for e in logged} == {("read-plays", "stream", t) for t in ada_tracks}
    reach(site.svc, caller, site.svc.catalog.artist("Ada"), now=now)
    assert site.svc.ledger.size == before + 2  # a second look within the hour is not logged again


def test_bar_chart_is_accessible_svg_with_one_bar_per_day() -> None:
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(7)]
    svg = bar_chart(chart_id="c", title="Plays <per> day", days=days, values=[0, 3, 1, 0, 7, 2, 0], unit="plays")
    assert svg.count('class="bar"') == 7 and 'role="img"' in svg and "Plays &lt;per&gt; day" in svg
    assert "13 plays" in svg and "busiest day 05 Nov with 7" in svg
    with pytest.raises(ValueError):
        bar_chart(chart_id="c", title="t", days=days, values=[1], unit="plays")


def test_newer_terms_are_offered_with_their_changes_and_accepted_from_the_page(site: Site) -> None:
    from consentune.consent.terms import DEFAULT_KINDS

    kinds = {p: k.value for p, k in DEFAULT_KINDS.items()} | {"organize": "opt-in"}
    site.svc.consent.publish_terms(kinds, summary="organize becomes opt-in", actor="admin:test")
    client = _client(site)
    csrf = _sign_in(client, site.keys["Ada"])
    ada = site.svc.catalog.artist("Ada")
    page = client.get(f"/dashboard/artists/{ada.id}").text
    assert "New platform terms v2" in page
    assert re.search(r"<th scope=\"row\">organize</th><td>opt-out</td><td>opt-in</td>", page)
    before = site.svc.ledger.size
    done = client.post(f"/dashboard/artists/{ada.id}/terms", data={"version": "2", "csrf_token": csrf})
    assert done.status_code == 200 and "You accepted platform terms v2" in done.text
    assert "New platform terms" not in done.text
    assert site.svc.catalog.artist("Ada").terms_version == 2
    actions = {e.action for e in site.svc.ledger.entries(range(before, site.svc.ledger.size))}
    assert "terms-accept" in actions and "purge" in actions  # organize is now off for Ada: purged


def test_a_time_bounded_choice_is_recorded_with_its_end_and_past_dates_are_refused(site: Site) -> None:
    client = _client(site)
    csrf = _sign_in(client, site.keys["Ada"])
    ada = site.svc.catalog.artist("Ada")
    url = f"/dashboard/artists/{ada.id}/consent"
    until = (datetime.now(UTC) + timedelta(days=40)).date()
    form = {"purpose": "train-ai", "choice": "on", "csrf_token": csrf}
    past = client.post(url, data={**form, "until": "2020-01-01"})
    assert past.status_code == 400 and "not in the future" in past.text
    assert client.post(url, data={**form, "until": "soon"}).status_code == 400
    saved = client.post(url, data={**form, "until": until.isoformat()})
    assert saved.status_code == 200 and f"your choice until {until:%Y-%m-%d} 00:00 UTC" in saved.text
    rule = {p.purpose: p for p in site.svc.consent.view(ada).purposes}["train-ai"].artist_rule
    assert (
        rule is not None and rule.allow and rule.valid_until == datetime(until.year, until.month, until.day, tzinfo=UTC)
    )


def test_receipt_download_names_the_file_and_refuses_odd_purposes(site: Site) -> None:
    client = _client(site)
    _sign_in(client, site.keys["Ada"])
    track = site.tracks["Ada"][0]
    ok = client.get(f"/dashboard/tracks/{track}/receipt")
    assert ok.status_code == 200 and ok.headers["content-disposition"] == f'attachment; filename="receipt-{track}.json"'
    assert client.get(f"/dashboard/tracks/{track}/receipt", params={"purpose": 'x"; y'}).status_code == 400
    assert client.get(f"/dashboard/tracks/{track}/receipt", params={"purpose": "train-ai"}).status_code == 404
    first = client.get(f"/dashboard/tracks/{track}/receipt", params={"format": "v2"})
    assert first.status_code == 200 and json.loads(first.content)["page"] == {"after": -1, "next": None}
    size = int(json.loads(first.content)["checkpoint"].splitlines()[1])
    assert verify_receipt_pages([first.content], verifier_key=site.svc.ledger.verifier_key).track == track
    again = client.get(f"/dashboard/tracks/{track}/receipt", params={"format": "v2", "size": size})
    assert again.content == first.content  # the same checkpoint gives the same page
    for odd in ({"format": "v3"}, {"format": "v2", "after": -2}, {"format": "v2", "size": -1}):
        assert client.get(f"/dashboard/tracks/{track}/receipt", params=odd).status_code == 400, odd


def test_an_empty_chart_says_so_instead_of_a_one_zero_zero_axis() -> None:
    days = [date(2026, 1, d) for d in range(1, 8)]
    svg = bar_chart(chart_id="c", title="Plays per day", days=days, values=[0] * 7, unit="plays")
    ticks = re.findall(r'text-anchor="end">(\d+)</text>', svg)
    assert ticks == ["0"] and "No plays yet" in svg and "No plays from 01 Jan to 07 Jan yet." in svg
    one = bar_chart(chart_id="d", title="Plays per day", days=days, values=[0, 1, 0, 0, 0, 0, 0], unit="plays")
    assert re.findall(r'text-anchor="end">(\d+)</text>', one) == ["0", "1"]


def test_pages_speak_words_with_the_exact_terms_one_click_away(site: Site) -> None:
    client = _client(site)
    _sign_in(client, site.keys["Ada"])
    track = site.tracks["Ada"][0]
    page = client.get(f"/dashboard/tracks/{track}").text
    header = page.split("<main")[0]
    assert "Signed in as Ada" in header and ">art_" not in header and " art_" not in header
    assert "Training AI models" in page and "(train-ai)" in page
    assert "Off: the platform terms (version 1) keep it off unless you switch it on." in page
    assert "terms: opt-in purpose, no rule (off) (terms v1)" in page  # under "Exact terms"
    assert 'title="admin:test">an operator</td>' in page  # who uploaded, in words
    empty = client.get(f"/dashboard/tracks/{track}", params={"purpose": "train-generative"}).text
    assert "Nothing to verify yet" in empty and "Download receipt" not in empty


def test_the_overview_says_what_happened_to_my_music_this_month(site: Site) -> None:
    svc = site.svc
    ada, bo = svc.catalog.artist("Ada"), svc.catalog.artist("Bo")
    song = TrackId(site.tracks["Ada"][0])
    svc.gate.request(actor="service:trainer", purpose=Purpose("train-ai"), tracks=[song])  # opt-in, never given
    svc.gate.request(actor="service:trainer", purpose=Purpose("train-ai"), tracks=[song])
    svc.gate.request(actor="service:recommend", purpose=Purpose("recommend"), tracks=[song])
    svc.gate.request(actor="service:trainer", purpose=Purpose("train-ai"), tracks=[TrackId(site.tracks["Bo"][0])])
    svc.ledger.integrate()
    summary = views.usage_summary(svc, ada)
    rows = {purpose: (used, refused) for purpose, used, refused in summary.per_purpose}
    assert rows["train-ai"] == (0, 2) and rows["recommend"][0] >= 1 and rows["recommend"][1] == 0
    assert [r.actor for r in summary.refusals] == ["service:trainer", "service:trainer"]
    assert all(r.track is not None and r.track.id == song for r in summary.refusals)
    assert views.usage_summary(svc, bo).refused == 1  # Bo's refusal is Bo's alone
    # last month's entries are not this month's
    next_month = datetime.now(UTC).replace(day=1) + timedelta(days=40)
    assert views.usage_summary(svc, ada, now=next_month).per_purpose == ()

    client = _client(site)
    _sign_in(client, site.keys["Ada"])
    page = client.get(f"/dashboard/artists/{ada.id}")
    assert page.status_code == 200
    section = page.text[page.text.index('id="usage"') : page.text.index('id="tracks-h"')]
    assert 'id="chart-uses"' in section and "Training AI models: 0 used, 2 refused" in section
    text = " ".join(section.split())
    assert "refused to the trainer service: Training AI models of <a" in text and ">wav</a>" in text
    assert site.tracks["Bo"][0] not in section
