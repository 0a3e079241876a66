"""Listener traffic through the shield: signed streams, ranges, real-time cap, forwarded headers, signals."""

from __future__ import annotations

import base64
import urllib.robotparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.config import Settings
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import Consentune, open_service
from consentune.types import Purpose

T0 = 1_800_000_000.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture
def svc(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Consentune]:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", shield_sim_clock=True,
        trusted_proxies=("10.0.0.1",), signal_ttl_s=0.0, anonymous_audio=getattr(request, "param", "full"),
    )  # fmt: skip
    service = open_service(settings)
    yield service
    service.close()


@pytest.fixture
def tracks(svc: Consentune, audio_files: dict[str, bytes]) -> dict[str, str]:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    minute = encode(synthesize(SongSpec(seed=5, duration_s=60.0, sample_rate=16_000)), 16_000, format="wav")
    a = svc.catalog.ingest(minute, filename="a.wav", artist=ada, title="Alpha", actor="t").track
    b = svc.catalog.ingest(audio_files["mp3"], filename="b.mp3", artist=bo, title="Beta", actor="t").track
    return {"a": a.id, "b": b.id}


def client_for(svc: Consentune, peer: str = "203.0.113.9") -> TestClient:
    return TestClient(create_app(svc), client=(peer, 40000), raise_server_exceptions=False)


def headers(now: float, **extra: str) -> dict[str, str]:
    return {"X-Consentune-Sim-Time": str(now), "User-Agent": BROWSER, **extra}


def session(c: TestClient, now: float = T0) -> str:
    r = c.post("/v1/listen/sessions", headers=headers(now))
    assert r.status_code == 201, r.text
    sid: str = r.json()["session_id"]
    return sid


def play(c: TestClient, sid: str, track: str, now: float = T0) -> dict[str, Any]:
    r = c.post(f"/v1/listen/tracks/{track}/play", headers=headers(now, **{"X-Session-Id": sid}))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_signed_stream_serves_ranges_within_real_time(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid = session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    r = c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": sid, "Range": "bytes=0-99"}))
    assert r.status_code == 206 and len(r.content) == 100
    total = int(r.headers["content-range"].split("/")[1])
    assert r.headers["content-range"] == f"bytes 0-99/{total}"
    assert r.headers["tdm-reservation"] == "1" and "train-ai=n" in r.headers["content-usage"]
    ahead = c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": sid, "Range": f"bytes={total - 10}-"}))
    assert ahead.status_code == 429 and int(ahead.headers["retry-after"]) >= 1  # 60-s track: cap is time + 30 s
    partial = c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": sid}))
    assert partial.status_code == 206 and 0.45 * total < len(partial.content) < 0.6 * total
    later = c.get(url, headers=headers(T0 + 31, **{"X-Session-Id": sid}))
    assert later.status_code == 206 and len(later.content) == total
    assert b"_PMX" in later.content[:4096] and b"DataMining" in later.content  # XMP policy travels with the file
    outside = c.get(url, headers=headers(T0 + 31, **{"X-Session-Id": sid, "Range": f"bytes={total + 5}-"}))
    assert outside.status_code == 416 and outside.json()["error"]["code"] == "range_not_satisfiable"


def test_signed_urls_resist_tampering_expiry_and_replay(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid, other = session(c), session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    token = url.rsplit("/", 1)[1]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert c.get(f"/stream/{flipped}", headers=headers(T0 + 1, **{"X-Session-Id": sid})).status_code == 403
    replay = c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": other}))
    assert replay.status_code == 403 and "session" in replay.json()["error"]["message"]
    expired = c.get(url, headers=headers(T0 + 3600, **{"X-Session-Id": sid}))
    assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    swapped = payload.replace(tracks["a"].encode(), tracks["b"].encode())
    forged = base64.urlsafe_b64encode(swapped).decode().rstrip("=") + "." + token.split(".")[1]
    assert c.get(f"/stream/{forged}", headers=headers(T0 + 1, **{"X-Session-Id": sid})).status_code == 403
    ok = c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": sid, "Range": "bytes=0-9"}))
    assert ok.status_code == 206
    assert svc.store.get_track(tracks["a"]) is not None


def test_forwarded_headers_are_believed_only_from_trusted_proxies(svc: Consentune) -> None:
    spoofer = client_for(svc, peer="198.51.100.7")
    r = spoofer.post("/v1/listen/sessions", headers=headers(T0, **{"X-Forwarded-For": "1.2.3.4"}))
    stored = svc.store.listener_session(r.json()["session_id"])
    assert stored is not None and stored.address == "198.51.100.7"
    proxied = client_for(svc, peer="10.0.0.1")
    r = proxied.post("/v1/listen/sessions", headers=headers(T0, **{"X-Forwarded-For": "1.2.3.4, 192.0.2.55"}))
    stored = svc.store.listener_session(r.json()["session_id"])
    assert stored is not None and stored.address == "192.0.2.55"  # the proxy's hop, not the client's claim


def test_every_play_goes_through_the_gate_and_ledger(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid = session(c)
    before = svc.ledger.size
    play(c, sid, tracks["b"])
    entries = svc.ledger.entries(range(before, svc.ledger.size))
    assert [(e.action, e.purpose, e.track, e.decision) for e in entries] == [
        ("read-audio", "stream", tracks["b"], "allow")
    ]
    assert entries[0].actor.startswith("listener:") and sid not in entries[0].actor  # a pseudonym, not the credential


def test_known_ai_crawler_is_blocked_and_operator_can_lift(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    bot = {"User-Agent": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)"}
    sid = c.post("/v1/listen/sessions", headers={**headers(T0), **bot}).json()["session_id"]
    r = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers={**headers(T0), **bot, "X-Session-Id": sid})
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    blocks = svc.listen.guard.decisions(action="block", active_only=True)
    assert blocks and blocks[0].signals and all(s["explanation"] for s in blocks[0].signals)
    svc.listen.guard.lift(blocks[0].id, by="admin:test", now=T0)
    assert svc.listen.guard.decisions(action="block", active_only=True) == []


def test_signup_rate_limit_per_address(svc: Consentune) -> None:
    c = client_for(svc)
    codes = [c.post("/v1/listen/accounts", headers=headers(T0 + i)).status_code for i in range(8)]
    assert codes[:5] == [201] * 5 and 429 in codes[5:]
    other = client_for(svc, peer="203.0.113.10")
    assert other.post("/v1/listen/accounts", headers=headers(T0 + 8)).status_code == 201


def test_robots_and_tdmrep_follow_each_artists_consent(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    ada = svc.catalog.artist("Ada")
    svc.consent.set(ada, purpose=Purpose("train-ai"), allow=True, actor="artist:ada", track=tracks["a"])
    svc.consent.set(ada, purpose=Purpose("train-generative"), allow=True, actor="artist:ada", track=tracks["a"])

    def robots() -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(c.get("/robots.txt").text.splitlines())
        return parser

    def reserved(track: str) -> int:
        rules = c.get("/.well-known/tdmrep.json").json()
        path = f"/v1/listen/tracks/{track}"
        for rule in rules:  # TDMRep: first matching location wins
            location = rule["location"].rstrip("$").rstrip("*")
            if path.startswith(location) or location == "/":
                return int(rule["tdm-reservation"])
        raise AssertionError("no TDMRep rule matched")

    def page(track: str) -> Any:
        return c.get(f"/v1/listen/tracks/{track}", headers=headers(T0)).headers

    parser = robots()  # from aggregates: track pages open because some artist allows train-ai
    assert parser.can_fetch("GPTBot", f"http://testserver/v1/listen/tracks/{tracks['a']}")
    assert not parser.can_fetch("GPTBot", "http://testserver/stream/anything")
    assert not parser.can_fetch("GPTBot", "http://testserver/v1/listen/catalog")
    assert (reserved(tracks["a"]), reserved(tracks["b"])) == (1, 1)  # the site default; pages say more
    assert page(tracks["a"])["tdm-reservation"] == "0" and "train-ai=y" in page(tracks["a"])["content-usage"]
    assert page(tracks["b"])["tdm-reservation"] == "1" and "train-ai=n" in page(tracks["b"])["content-usage"]

    svc.consent.revoke(ada, purpose=Purpose("train-ai"), actor="artist:ada", track=tracks["a"])
    assert not robots().can_fetch("GPTBot", f"http://testserver/v1/listen/tracks/{tracks['a']}")
    assert page(tracks["a"])["tdm-reservation"] == "1" and "train-ai=n" in page(tracks["a"])["content-usage"]


def test_rate_limits_are_shared_through_redis(tmp_path: Path) -> None:
    """Two workers (two service instances) share one bucket when Redis is configured."""
    import os
    import random

    import redis

    url = os.environ.get("CONSENTUNE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} is unreachable: {exc}")
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", shield_sim_clock=True, redis_url=url
    )
    workers = [open_service(settings), open_service(settings)]
    try:
        peer = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"  # fresh bucket each run
        clients = [client_for(w, peer=peer) for w in workers]
        codes = [clients[i % 2].post("/v1/listen/accounts", headers=headers(T0 + i)).status_code for i in range(8)]
        assert codes[:5] == [201] * 5 and codes[5:] == [429] * 3
    finally:
        for w in workers:
            w.close()


def test_account_age_reaches_the_detector(svc: Consentune, tracks: dict[str, str], monkeypatch: Any) -> None:
    from consentune.shield.detect import AccessEvent, ScraperDetector

    seen: list[AccessEvent] = []
    original = ScraperDetector.observe

    def spy(self: ScraperDetector, event: AccessEvent) -> Any:
        seen.append(event)
        return original(self, event)

    monkeypatch.setattr(ScraperDetector, "observe", spy)
    c = client_for(svc)
    signed_up_at = T0 - 30 * 86_400
    r = c.post("/v1/listen/accounts", headers=headers(signed_up_at))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r = c.post("/v1/listen/sessions", headers=headers(T0, Authorization=f"Bearer {token}"))
    sid = r.json()["session_id"]
    stored = svc.store.listener_session(sid)
    assert stored is not None and stored.account_created_at == pytest.approx(signed_up_at)
    play(c, sid, tracks["a"])
    plays = [e for e in seen if e.kind == "play"]
    assert plays and plays[-1].account_created_at == pytest.approx(signed_up_at)
    anonymous = session(c)
    assert (found := svc.store.listener_session(anonymous)) is not None and found.account_created_at is None


def account_session(c: TestClient, now: float = T0) -> tuple[str, str]:
    """(token, session id) of a new account's session."""
    token = c.post("/v1/listen/accounts", headers=headers(now)).json()["token"]
    r = c.post("/v1/listen/sessions", headers=headers(now, Authorization=f"Bearer {token}"))
    assert r.status_code == 201, r.text
    return token, str(r.json()["session_id"])


@pytest.mark.parametrize("svc", ["none"], indirect=True)
def test_anonymous_listeners_are_asked_to_sign_in_when_the_policy_is_none(
    svc: Consentune, tracks: dict[str, str]
) -> None:
    c = client_for(svc)
    before = svc.ledger.size
    r = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(T0, **{"X-Session-Id": session(c)}))
    assert r.status_code == 403 and r.json()["error"]["code"] == "sign_in_required" and r.json()["error"]["hint"]
    assert svc.ledger.size == before  # refused before the gate: no audio was read
    _token, sid = account_session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    assert c.get(url, headers=headers(T0 + 1, **{"X-Session-Id": sid})).status_code == 206


@pytest.mark.parametrize("svc", ["preview"], indirect=True)
def test_anonymous_preview_stops_at_the_preview_length(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid = session(c)
    body = play(c, sid, tracks["a"])
    assert body["preview_s"] == 30.0
    url = body["stream_url"]
    first = c.get(url, headers=headers(T0 + 50, **{"X-Session-Id": sid}))
    total = int(first.headers["content-range"].split("/")[1])
    assert first.status_code == 206 and 0.45 * total < len(first.content) <= 0.51 * total  # 30 s of a 60-s track
    rest = c.get(url, headers=headers(T0 + 55, **{"X-Session-Id": sid, "Range": f"bytes={len(first.content)}-"}))
    assert rest.status_code == 403 and rest.json()["error"]["code"] == "preview_only"
    _token, signed_in = account_session(c)
    url = play(c, signed_in, tracks["a"])["stream_url"]
    whole = c.get(url, headers=headers(T0 + 60, **{"X-Session-Id": signed_in}))
    assert whole.status_code == 206 and len(whole.content) == total


def test_a_new_play_ends_the_previous_stream_of_the_same_listener(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    token, phone = account_session(c)
    laptop = c.post("/v1/listen/sessions", headers=headers(T0, Authorization=f"Bearer {token}")).json()["session_id"]
    first = play(c, phone, tracks["a"])["stream_url"]
    assert c.get(first, headers=headers(T0 + 1, **{"X-Session-Id": phone, "Range": "bytes=0-9"})).status_code == 206
    second = play(c, laptop, tracks["b"], now=T0 + 2)["stream_url"]
    old = c.get(first, headers=headers(T0 + 3, **{"X-Session-Id": phone, "Range": "bytes=10-19"}))
    assert old.status_code == 403 and old.json()["error"]["code"] == "stream_superseded"
    assert c.get(second, headers=headers(T0 + 3, **{"X-Session-Id": laptop, "Range": "bytes=0-9"})).status_code == 206
    anonymous = session(c)  # without an account the session is the listener; other listeners are untouched
    mine = play(c, anonymous, tracks["a"], now=T0 + 4)["stream_url"]
    play(c, anonymous, tracks["b"], now=T0 + 5)
    stale = c.get(mine, headers=headers(T0 + 6, **{"X-Session-Id": anonymous, "Range": "bytes=0-9"}))
    assert stale.status_code == 403 and stale.json()["error"]["code"] == "stream_superseded"
    assert c.get(second, headers=headers(T0 + 6, **{"X-Session-Id": laptop, "Range": "bytes=10-19"})).status_code == 206
