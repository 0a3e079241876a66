"""Consent forms never change a choice the artist did not touch; a track can follow the all-tracks choice again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentune.api import create_app
from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.types import ArtistId, Purpose, Role, TrackId

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class _Forms(HTMLParser):
    """Collects each form's action and the values a browser would submit untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {}
            self.forms.append((a.get("action", ""), self._current))
        elif tag == "input" and self._current is not None and "name" in a:
            if a.get("type") == "radio" and "checked" not in a:
                return
            self._current[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _untouched_form(html: str, *, action_suffix: str, purpose: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(html)
    for action, fields in parser.forms:
        if action.endswith(action_suffix) and fields.get("purpose") == purpose:
            return fields
    raise AssertionError(f"no {action_suffix} form for {purpose}")


@dataclass
class Dashboard:
    svc: Consentune
    client: TestClient
    artist_id: str
    track_id: str


@pytest.fixture
def dashboard(tmp_path: Path, audio_files: dict[str, bytes]) -> Iterator[Dashboard]:
    svc = open_service(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title="One", actor="admin:test")
    key = svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(artist.id))[1]
    client = TestClient(create_app(svc), raise_server_exceptions=True)
    form = client.get("/dashboard/sign-in")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    assert client.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": token.group(1)}).status_code == 200
    yield Dashboard(svc, client, artist.id, track.track.id)
    svc.close()


def _artist_rules(d: Dashboard) -> list[tuple[int, str, bool | None, datetime | None]]:
    view = d.svc.consent.view(d.svc.catalog.artist(d.artist_id))
    return [
        (p.artist_rule.id, p.purpose, p.artist_rule.allow, p.artist_rule.valid_until)
        for p in view.purposes
        if p.artist_rule is not None
    ]


CHANGEABLE = ["recommend", "organize", "train-ai", "train-generative", "ai-input"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    purpose=st.sampled_from(CHANGEABLE),
    answer=st.sampled_from([None, True, False]),
    days=st.one_of(st.none(), st.integers(min_value=1, max_value=900)),
    seconds=st.integers(min_value=0, max_value=86_399),
)
def test_saving_any_consent_form_untouched_changes_nothing(
    dashboard: Dashboard, purpose: str, answer: bool | None, days: int | None, seconds: int
) -> None:
    d = dashboard
    artist = d.svc.catalog.artist(d.artist_id)
    if answer is not None:
        until = None if days is None else datetime.now(UTC) + timedelta(days=days, seconds=seconds)
        d.svc.consent.set(artist, purpose=Purpose(purpose), allow=answer, actor="admin:test", valid_until=until)
    page = d.client.get(f"/dashboard/artists/{d.artist_id}")
    fields = _untouched_form(page.text, action_suffix="/consent", purpose=purpose)
    rules_before, ledger_before = _artist_rules(d), d.svc.ledger.size
    decision_before = d.svc.gate.decide(purpose=Purpose(purpose), tracks=[TrackId(d.track_id)]).allowed[0]

    saved = d.client.post(f"/dashboard/artists/{d.artist_id}/consent", data=fields)

    assert saved.status_code == 200, saved.text
    assert "Nothing changed" in saved.text
    assert _artist_rules(d) == rules_before
    assert d.svc.ledger.size == ledger_before
    assert d.svc.gate.decide(purpose=Purpose(purpose), tracks=[TrackId(d.track_id)]).allowed[0] == decision_before


def test_an_end_date_is_shown_prefilled_and_survives_a_resave(dashboard: Dashboard) -> None:
    d = dashboard
    artist = d.svc.catalog.artist(d.artist_id)
    end = datetime(2027, 1, 31, 17, 30, tzinfo=UTC)
    d.svc.consent.set(artist, purpose=Purpose("train-ai"), allow=True, actor="admin:test", valid_until=end)
    page = d.client.get(f"/dashboard/artists/{d.artist_id}")
    fields = _untouched_form(page.text, action_suffix="/consent", purpose="train-ai")
    assert fields["until"] == "2027-01-31" and fields["ends"] == "on"

    # the artist switches it off but leaves the end date as it is: the end date stays exact
    d.client.post(f"/dashboard/artists/{d.artist_id}/consent", data={**fields, "choice": "off"})
    rule = {p.purpose: p for p in d.svc.consent.view(artist).purposes}["train-ai"].artist_rule
    assert rule is not None and rule.allow is False and rule.valid_until == end

    # "No end date" is an explicit choice, and the confirmation says what it causes
    page = d.client.get(f"/dashboard/artists/{d.artist_id}")
    fields = _untouched_form(page.text, action_suffix="/consent", purpose="train-ai")
    done = d.client.post(f"/dashboard/artists/{d.artist_id}/consent", data={**fields, "ends": "never"})
    rule = {p.purpose: p for p in d.svc.consent.view(artist).purposes}["train-ai"].artist_rule
    assert rule is not None and rule.valid_until is None
    assert "with no end date" in done.text and "No new training may use your content" in done.text


def test_a_choice_that_reached_its_end_date_is_shown_as_ended(dashboard: Dashboard) -> None:
    d = dashboard
    artist = d.svc.catalog.artist(d.artist_id)
    start = datetime.now(UTC) - timedelta(days=10)
    d.svc.consent.set(
        artist,
        purpose=Purpose("train-ai"),
        allow=True,
        actor="admin:test",
        valid_from=start,
        valid_until=start + timedelta(days=3),
    )
    page = d.client.get(f"/dashboard/artists/{d.artist_id}")
    ended = (start + timedelta(days=3)).strftime("%d %b %Y")
    assert f"Your choice (on) for all tracks ended on {ended}" in page.text


def test_a_track_can_follow_the_all_tracks_choice_again_from_dashboard_api_and_cli(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = dashboard
    artist = d.svc.catalog.artist(d.artist_id)
    track = TrackId(d.track_id)
    recommend = Purpose("recommend")

    def allowed() -> bool:
        return bool(d.svc.gate.decide(purpose=recommend, tracks=[track]).allowed[0])

    d.svc.consent.set(artist, purpose=recommend, allow=False, actor="admin:test", track=track)
    assert not allowed()  # the track's own "off" wins over the terms' opt-out default
    page = d.client.get(f"/dashboard/tracks/{track}")
    csrf = CSRF_META.search(page.text)
    assert csrf is not None and "Follow my all-tracks choice for recommend" in page.text
    done = d.client.post(
        f"/dashboard/artists/{d.artist_id}/consent/clear",
        data={"purpose": "recommend", "track_id": track, "csrf_token": csrf.group(1)},
    )
    assert done.status_code == 200 and "it follows your all-tracks choice" in done.text
    assert allowed()
    assert "Follow my all-tracks choice for recommend" not in done.text
    entries = d.svc.ledger.track_entries(track=track, purpose="recommend", limit=10)
    assert entries[-1].action == "consent-clear"

    # the same through the API, with the artist's own key
    d.svc.consent.set(artist, purpose=recommend, allow=False, actor="admin:test", track=track)
    key = d.svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(artist.id))[1]
    api = TestClient(d.client.app)
    cleared = api.delete(f"/v1/me/consent/tracks/{track}/recommend", headers={"Authorization": f"Bearer {key}"})
    assert cleared.status_code == 200 and cleared.json()["allow"] is None
    assert allowed()
    other = api.delete("/v1/me/consent/tracks/nope/recommend", headers={"Authorization": f"Bearer {key}"})
    assert other.status_code == 404 and set(other.json()["error"]) == {"code", "message", "hint"}

    # and the CLI: `consentune consent clear ARTIST PURPOSE --track T`
    from consentune.cli import main

    d.svc.consent.set(artist, purpose=recommend, allow=False, actor="admin:test", track=track)
    monkeypatch.setenv("CONSENTUNE_HOME", str(d.svc.settings.home))
    monkeypatch.setenv("CONSENTUNE_DATABASE_URL", d.svc.settings.database_url)
    assert main(["consent", "clear", "Ada", "recommend", "--track", track]) == 0
    assert "follows Ada's all-tracks choice: allowed" in capsys.readouterr().out.replace("\n", " ")
    assert allowed()
