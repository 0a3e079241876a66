"""Listener traffic through the shield: signed streams, ranges, real-time cap, forwarded headers, signals."""

from __future__ import annotations

import base64
import time
import urllib.robotparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.config import Settings
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.errors import InvalidInput
from consentune.service import Consentune, open_service
from consentune.shield.listen import RESUME_WINDOW_S
from consentune.types import Purpose

T0 = 1_800_000_000.0
TOKEN = "X-Session-Token"  # the session credential, for clients that keep no cookies
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture
def svc(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Consentune]:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", shield_sim_clock=True,
        bench_mode=True, trusted_proxies=("10.0.0.1", "127.0.0.1"), signal_ttl_s=0.0,
        anonymous_audio=getattr(request, "param", "full"),
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
    """A client at ``peer`` behind the local trusted proxy (the simulated clock is accepted from loopback only)."""
    return TestClient(create_app(svc), client=("127.0.0.1", 40000), raise_server_exceptions=False,
                      headers={"X-Forwarded-For": peer})  # fmt: skip


def direct_client(svc: Consentune, peer: str) -> TestClient:
    """A client connecting from ``peer`` itself (no proxy; real time)."""
    return TestClient(create_app(svc), client=(peer, 40000), raise_server_exceptions=False)


def headers(now: float, **extra: str) -> dict[str, str]:
    return {"X-Consentune-Sim-Time": str(now), "User-Agent": BROWSER, **extra}


def session(c: TestClient, now: float = T0) -> str:
    r = c.post("/v1/listen/sessions", headers=headers(now))
    assert r.status_code == 201, r.text
    sid: str = r.json()["session_token"]
    return sid


def play(c: TestClient, sid: str, track: str, now: float = T0) -> dict[str, Any]:
    r = c.post(f"/v1/listen/tracks/{track}/play", headers=headers(now, **{TOKEN: sid}))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_signed_stream_serves_ranges_within_real_time(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid = session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    r = c.get(url, headers=headers(T0 + 1, **{TOKEN: sid, "Range": "bytes=0-99"}))
    assert r.status_code == 206 and len(r.content) == 100
    total = int(r.headers["content-range"].split("/")[1])
    assert r.headers["content-range"] == f"bytes 0-99/{total}"
    assert r.headers["tdm-reservation"] == "1" and "train-ai=n" in r.headers["content-usage"]
    ahead = c.get(url, headers=headers(T0 + 1, **{TOKEN: sid, "Range": f"bytes={total - 10}-"}))
    assert ahead.status_code == 429 and int(ahead.headers["retry-after"]) >= 1  # 60-s track: cap is time + 30 s
    partial = c.get(url, headers=headers(T0 + 1, **{TOKEN: sid}))
    assert partial.status_code == 206 and 0.45 * total < len(partial.content) < 0.6 * total
    later = c.get(url, headers=headers(T0 + 31, **{TOKEN: sid}))
    assert later.status_code == 206 and len(later.content) == total
    assert b"_PMX" in later.content[:4096] and b"DataMining" in later.content  # XMP policy travels with the file
    outside = c.get(url, headers=headers(T0 + 31, **{TOKEN: sid, "Range": f"bytes={total + 5}-"}))
    assert outside.status_code == 416 and outside.json()["error"]["code"] == "range_not_satisfiable"


def test_signed_urls_resist_tampering_expiry_and_replay(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid, other = session(c), session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    token = url.rsplit("/", 1)[1]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert c.get(f"/stream/{flipped}", headers=headers(T0 + 1, **{TOKEN: sid})).status_code == 403
    replay = c.get(url, headers=headers(T0 + 1, **{TOKEN: other}))
    assert replay.status_code == 403 and "session" in replay.json()["error"]["message"]
    expired = c.get(url, headers=headers(T0 + 3600, **{TOKEN: sid}))
    assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]
    ok = c.get(url, headers=headers(T0 + 1, **{TOKEN: sid, "Range": "bytes=0-9"}))
    assert ok.status_code == 206
    assert svc.store.get_track(tracks["a"]) is not None


def test_a_stream_url_names_nobody_and_opens_nothing(svc: Consentune, tracks: dict[str, str]) -> None:
    """Whoever sees a stream URL (a shared link, a proxy log) learns no identity and cannot act as the listener."""
    c = client_for(svc)
    r = c.post("/v1/listen/sessions", headers=headers(T0))
    credential, public_id = r.json()["session_token"], r.json()["session_id"]
    url = play(c, credential, tracks["a"])["stream_url"]
    raw = base64.urlsafe_b64decode(url.rsplit("/", 1)[1] + "==")
    for secret in (credential, public_id, tracks["a"], credential[4:12], public_id[4:12], tracks["a"][4:]):
        assert secret not in url and secret.encode() not in raw
    stranger = client_for(svc, peer="198.51.100.20")  # has the URL, not the cookie
    assert stranger.get(url, headers=headers(T0 + 1)).status_code == 400
    assert stranger.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=headers(T0 + 2)).status_code == 400
    progress = {"track_id": tracks["a"], "position_s": 5.0}
    assert stranger.post("/v1/listen/progress", json=progress, headers=headers(T0 + 3)).status_code == 400
    for guess in (public_id, url.rsplit("/", 1)[1]):  # neither the public id nor the token is a credential
        as_listener = headers(T0 + 4, **{TOKEN: guess})
        assert stranger.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=as_listener).status_code == 400
        assert stranger.get(url, headers=as_listener).status_code == 400
    assert svc.store.listener_session(credential) is None  # the database holds the id, not the credential
    assert c.get(url, headers=headers(T0 + 5, **{TOKEN: credential, "Range": "bytes=0-9"})).status_code == 206


def test_the_session_cookie_is_secure_except_for_local_http(tmp_path: Path) -> None:
    def cookie(secure: str, base_url: str) -> str:
        settings = Settings(home=tmp_path / secure, database_url=f"sqlite:///{tmp_path / secure}.db",
                            cookie_secure=secure)  # fmt: skip
        service = open_service(settings)
        try:
            with TestClient(create_app(service), base_url=base_url) as c:
                r = c.post("/v1/listen/sessions", headers={"User-Agent": BROWSER})
                assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
                return r.headers["set-cookie"].lower()
        finally:
            service.close()

    assert "; secure" in cookie("auto", "http://listen.example.org")  # behind a TLS-terminating proxy
    assert "; secure" in cookie("auto", "https://listen.example.org")
    assert "; secure" not in cookie("auto", "http://127.0.0.1:8000")  # the local demo keeps working
    assert "; secure" in cookie("1", "http://127.0.0.1:8000")
    assert "; secure" not in cookie("0", "http://listen.example.org")
    for value in ("auto", "1"):
        assert "httponly" in cookie(value, "https://listen.example.org")
    with pytest.raises(InvalidInput):
        Settings.from_env({"CONSENTUNE_HOME": str(tmp_path), "CONSENTUNE_COOKIE_SECURE": "maybe"})


def test_the_sim_clock_needs_bench_mode_and_a_loopback_peer(svc: Consentune, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        Settings.from_env({"CONSENTUNE_HOME": str(tmp_path), "CONSENTUNE_SHIELD_SIM_CLOCK": "1"})
    assert "CONSENTUNE_BENCH_MODE" in refused.value.hint
    production = open_service(Settings(home=tmp_path / "p", database_url=f"sqlite:///{tmp_path / 'p.db'}"))
    try:
        seen = _sessions_created_at(production, direct_client(production, "127.0.0.1"))
        assert abs(seen - time.time()) < 3600  # the header is ignored: real time
    finally:
        production.close()
    remote = direct_client(svc, "198.51.100.30")  # bench mode, but not from loopback
    r = remote.post("/v1/listen/sessions", headers=headers(T0))
    assert r.status_code == 400 and "loopback" in r.json()["error"]["message"]
    assert _sessions_created_at(svc, client_for(svc)) == T0
    from consentune.cli.serve import check_bench_bind

    bench = Settings(home=tmp_path, database_url="sqlite://", shield_sim_clock=True, bench_mode=True)
    check_bench_bind(bench, "127.0.0.1")
    with pytest.raises(InvalidInput):
        check_bench_bind(bench, "0.0.0.0")


def _sessions_created_at(service: Consentune, c: TestClient) -> float:
    r = c.post("/v1/listen/sessions", headers=headers(T0))
    assert r.status_code == 201, r.text
    stored = service.store.listener_session(r.json()["session_id"])
    assert stored is not None
    return stored.created_at


def test_forwarded_headers_are_believed_only_from_trusted_proxies(svc: Consentune) -> None:
    spoofer = direct_client(svc, "198.51.100.7")
    r = spoofer.post("/v1/listen/sessions", headers={"User-Agent": BROWSER, "X-Forwarded-For": "1.2.3.4"})
    stored = svc.store.listener_session(r.json()["session_id"])
    assert stored is not None and stored.address == "198.51.100.7"
    proxied = direct_client(svc, "10.0.0.1")
    r = proxied.post("/v1/listen/sessions", headers={"User-Agent": BROWSER, "X-Forwarded-For": "1.2.3.4, 192.0.2.55"})
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
    sid = c.post("/v1/listen/sessions", headers={**headers(T0), **bot}).json()["session_token"]
    r = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers={**headers(T0), **bot, TOKEN: sid})
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
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", shield_sim_clock=True,
        bench_mode=True, trusted_proxies=("127.0.0.1",), redis_url=url,
    )  # fmt: skip
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
    stored = svc.store.listener_session(r.json()["session_id"])
    assert stored is not None and stored.account_created_at == pytest.approx(signed_up_at)
    play(c, r.json()["session_token"], tracks["a"])
    plays = [e for e in seen if e.kind == "play"]
    assert plays and plays[-1].account_created_at == pytest.approx(signed_up_at)
    anonymous = c.post("/v1/listen/sessions", headers=headers(T0)).json()["session_id"]
    assert (found := svc.store.listener_session(anonymous)) is not None and found.account_created_at is None


def account_session(c: TestClient, now: float = T0) -> tuple[str, str]:
    """(token, session id) of a new account's session."""
    token = c.post("/v1/listen/accounts", headers=headers(now)).json()["token"]
    r = c.post("/v1/listen/sessions", headers=headers(now, Authorization=f"Bearer {token}"))
    assert r.status_code == 201, r.text
    return token, str(r.json()["session_token"])


@pytest.mark.parametrize("svc", ["none"], indirect=True)
def test_anonymous_listeners_are_asked_to_sign_in_when_the_policy_is_none(
    svc: Consentune, tracks: dict[str, str]
) -> None:
    c = client_for(svc)
    before = svc.ledger.size
    r = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(T0, **{TOKEN: session(c)}))
    assert r.status_code == 403 and r.json()["error"]["code"] == "sign_in_required" and r.json()["error"]["hint"]
    assert svc.ledger.size == before  # refused before the gate: no audio was read
    _token, sid = account_session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    assert c.get(url, headers=headers(T0 + 1, **{TOKEN: sid})).status_code == 206


@pytest.mark.parametrize("svc", ["preview"], indirect=True)
def test_anonymous_preview_stops_at_the_preview_length(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    sid = session(c)
    body = play(c, sid, tracks["a"])
    assert body["preview_s"] == 30.0
    url = body["stream_url"]
    first = c.get(url, headers=headers(T0 + 50, **{TOKEN: sid}))
    total = int(first.headers["content-range"].split("/")[1])
    assert first.status_code == 206 and 0.45 * total < len(first.content) <= 0.51 * total  # 30 s of a 60-s track
    rest = c.get(url, headers=headers(T0 + 55, **{TOKEN: sid, "Range": f"bytes={len(first.content)}-"}))
    assert rest.status_code == 403 and rest.json()["error"]["code"] == "preview_only"
    _token, signed_in = account_session(c)
    url = play(c, signed_in, tracks["a"])["stream_url"]
    whole = c.get(url, headers=headers(T0 + 60, **{TOKEN: signed_in}))
    assert whole.status_code == 206 and len(whole.content) == total


def test_a_new_play_ends_the_previous_stream_of_the_same_listener(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc)
    token, phone = account_session(c)
    laptop = c.post("/v1/listen/sessions", headers=headers(T0, Authorization=f"Bearer {token}")).json()["session_token"]
    first = play(c, phone, tracks["a"])["stream_url"]
    assert c.get(first, headers=headers(T0 + 1, **{TOKEN: phone, "Range": "bytes=0-9"})).status_code == 206
    second = play(c, laptop, tracks["b"], now=T0 + 2)["stream_url"]
    old = c.get(first, headers=headers(T0 + 3, **{TOKEN: phone, "Range": "bytes=10-19"}))
    assert old.status_code == 403 and old.json()["error"]["code"] == "stream_superseded"
    assert c.get(second, headers=headers(T0 + 3, **{TOKEN: laptop, "Range": "bytes=0-9"})).status_code == 206
    anonymous = session(c)  # without an account the session is the listener; other listeners are untouched
    mine = play(c, anonymous, tracks["a"], now=T0 + 4)["stream_url"]
    play(c, anonymous, tracks["b"], now=T0 + 5)
    stale = c.get(mine, headers=headers(T0 + 6, **{TOKEN: anonymous, "Range": "bytes=0-9"}))
    assert stale.status_code == 403 and stale.json()["error"]["code"] == "stream_superseded"
    assert c.get(second, headers=headers(T0 + 6, **{TOKEN: laptop, "Range": "bytes=10-19"})).status_code == 206


def _public_requests(c: TestClient, tracks: dict[str, str]) -> dict[tuple[str, str], Any]:
    """One request per public listener route (method, path template) -> a callable sending it at ``now``."""
    credential = c.post("/v1/listen/sessions", headers=headers(T0)).json()["session_token"]
    me = {TOKEN: credential}
    a = tracks["a"]
    return {
        ("GET", "/robots.txt"): lambda now: c.get("/robots.txt", headers=headers(now)),
        ("GET", "/.well-known/tdmrep.json"): lambda now: c.get("/.well-known/tdmrep.json", headers=headers(now)),
        ("GET", "/v1/listen/tracks/{track_id}/policy.xmp"): lambda now: c.get(
            f"/v1/listen/tracks/{a}/policy.xmp", headers=headers(now)
        ),
        ("GET", "/v1/listen/catalog"): lambda now: c.get("/v1/listen/catalog", headers=headers(now)),
        ("GET", "/v1/listen/search"): lambda now: c.get("/v1/listen/search?q=al", headers=headers(now)),
        ("GET", "/v1/listen/tracks/{track_id}"): lambda now: c.get("/v1/listen/tracks/trk_nope", headers=headers(now)),
        ("POST", "/v1/listen/accounts"): lambda now: c.post("/v1/listen/accounts", headers=headers(now)),
        ("POST", "/v1/listen/sessions"): lambda now: c.post("/v1/listen/sessions", headers=headers(now)),
        ("POST", "/v1/listen/tracks/{track_id}/play"): lambda now: c.post(
            f"/v1/listen/tracks/{a}/play", headers=headers(now, **me)
        ),
        ("GET", "/stream/{token}"): lambda now: c.get("/stream/forged-token", headers=headers(now, **me)),
        ("POST", "/v1/listen/progress"): lambda now: c.post(
            "/v1/listen/progress", json={"track_id": a, "position_s": 0.0}, headers=headers(now, **me)
        ),
        ("POST", "/v1/listen/challenge"): lambda now: c.post(
            "/v1/listen/challenge", json={"token": "x", "nonce": "1"}, headers=headers(now, **me)
        ),
    }


def test_every_public_route_is_rate_limited(svc: Consentune, tracks: dict[str, str]) -> None:
    from consentune.api import routes_listen, routes_signals

    routes = {
        (method, route.path)
        for router in (routes_listen.router, routes_signals.router)
        for route in router.routes
        for method in getattr(route, "methods", ()) - {"HEAD"}
    }
    for i, route in enumerate(sorted(routes)):
        c = client_for(svc, peer=f"198.51.100.{i + 1}")  # a fresh address (and its buckets) per route
        send = _public_requests(c, tracks)[route]  # KeyError: a new public route must be added here
        codes = []
        while 429 not in codes and len(codes) < 300:
            codes.append(send(T0 + 1).status_code)
        assert 429 in codes, f"{route} answered {sorted(set(codes))} to 300 requests in one second"


def _public_text(r: Any) -> str:
    error = r.json()["error"]
    return f"{error['message']} hint: {error['hint']}"


def test_refusals_name_nobody_else_and_disclose_no_threshold(svc: Consentune, tracks: dict[str, str]) -> None:
    import re

    c = client_for(svc, peer="203.0.113.50")
    bot = {"User-Agent": "Mozilla/5.0 (compatible; GPTBot/1.2)"}
    r = c.post("/v1/listen/accounts", headers=headers(T0))
    bot_account, bot_token = r.json()["account_id"], r.json()["token"]
    r = c.post("/v1/listen/sessions", headers={**headers(T0, Authorization=f"Bearer {bot_token}"), **bot})
    bot_id, bot_credential = r.json()["session_id"], r.json()["session_token"]
    blocked = c.post(f"/v1/listen/tracks/{tracks['a']}/play",
                     headers={**headers(T0 + 1, **{TOKEN: bot_credential}), **bot})  # fmt: skip
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "blocked"
    texts = [_public_text(blocked)]
    _token, newcomer = account_session(c, now=T0 + 60)  # a newcomer at the same address: locked out
    refused = c.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=headers(T0 + 61, **{TOKEN: newcomer}))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "blocked"
    texts.append(_public_text(refused))
    cheat = session(c := client_for(svc, peer="198.51.100.77"))  # reports positions past the end of the track
    play(c, cheat, tracks["a"], now=T0)
    for i in range(6):
        report = {"track_id": tracks["a"], "position_s": 500.0 + i}
        r = c.post("/v1/listen/progress", json=report, headers=headers(T0 + 1 + i, **{TOKEN: cheat}))
        if r.status_code != 204:
            assert r.json()["error"]["code"] in ("challenge_required", "blocked")
            texts.append(_public_text(r))
    assert len(texts) >= 3
    records = svc.listen.guard.decisions()
    assert any("GPTBot" in str(record.signals) for record in records)  # the operator still sees the evidence
    for text in texts:
        for other in (bot_id, bot_credential, bot_account, "GPTBot", "ai_crawler", "203.0.113.50"):
            assert other not in text
        message = text.split(" hint: ")[0]
        assert not re.search(r"\d", re.sub(r"\(reference \d+\)", "", message)), message  # no numbers to stay under


def test_progress_reports_say_when_the_player_seeks_pauses_and_resumes(
    svc: Consentune, tracks: dict[str, str], monkeypatch: Any
) -> None:
    from consentune.shield.detect import AccessEvent, ScraperDetector

    seen: list[AccessEvent] = []
    original = ScraperDetector.observe

    def spy(self: ScraperDetector, event: AccessEvent) -> Any:
        seen.append(event)
        return original(self, event)

    monkeypatch.setattr(ScraperDetector, "observe", spy)
    c = client_for(svc)
    sid = session(c)
    url = play(c, sid, tracks["a"])["stream_url"]
    assert c.get(url, headers=headers(T0 + 1, **{TOKEN: sid, "Range": "bytes=0-999"})).status_code == 206

    def report(at: float, position: float, event: str | None = None) -> int:
        body: dict[str, Any] = {"track_id": tracks["a"], "position_s": position}
        if event is not None:
            body["event"] = event
        return c.post("/v1/listen/progress", json=body, headers=headers(at, **{TOKEN: sid})).status_code

    assert report(T0 + 5, 5.0) == 204
    assert report(T0 + 6, 50.0, "seek") == 204  # ahead of anything the real-time window allows yet
    assert report(T0 + 8, 10.0, "seek") == 204
    assert report(T0 + 9, 55.0, "seek") == 204  # unannounced, these two jumps would be two odd reports
    assert report(T0 + 14, 58.0) == 204
    assert report(T0 + 15, 58.0, "pause") == 204
    assert report(T0 + 2500, 58.0, "resume") == 204
    assert report(T0 + 2501, 1.0, "rewind") == 422
    assert svc.listen.guard.decisions() == []
    events = [(e.player_event, e.position_s) for e in seen if e.kind == "progress"]
    assert events == [("tick", 5.0), ("seek", 50.0), ("seek", 10.0), ("seek", 55.0), ("tick", 58.0),
                      ("pause", 58.0), ("resume", 58.0)]  # fmt: skip


def test_a_challenged_listener_solves_the_challenge_and_goes_on(svc: Consentune, tracks: dict[str, str]) -> None:
    from consentune.shield.challenge import Challenge, solve

    c = client_for(svc, peer="198.51.100.78")
    sid = session(c)
    play(c, sid, tracks["a"])
    statuses = []
    for i in range(3):  # reports past the end of the track: enough to be asked for a proof of work
        report = {"track_id": tracks["a"], "position_s": 500.0 + i}
        r = c.post("/v1/listen/progress", json=report, headers=headers(T0 + 1 + i, **{TOKEN: sid}))
        statuses.append(r.status_code)
    assert statuses == [204, 204, 403] and r.json()["error"]["code"] == "challenge_required"
    raw = r.json()["error"]["challenge"]
    challenge = Challenge(raw["token"], raw["salt"], raw["difficulty_bits"], raw["expires_at"])
    answer = {"token": challenge.token, "nonce": solve(challenge)}
    assert c.post("/v1/listen/challenge", json=answer, headers=headers(T0 + 4, **{TOKEN: sid})).status_code == 204
    assert play(c, sid, tracks["b"], now=T0 + 5)["stream_url"]


def test_a_browser_that_keeps_its_cookie_is_served_again_when_its_block_ends(
    svc: Consentune, tracks: dict[str, str]
) -> None:
    browser = TestClient(create_app(svc), base_url="https://listen.example.org", client=("127.0.0.1", 40000),
                         headers={"X-Forwarded-For": "198.51.100.79"}, raise_server_exceptions=False)  # fmt: skip
    assert browser.post("/v1/listen/sessions", headers=headers(T0)).status_code == 201
    assert browser.cookies.get("ctn_session")  # from now on only the cookie says who this is
    assert browser.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(T0)).status_code == 200
    codes = []
    for i in range(6):  # positions past the end of the track: a block
        report = {"track_id": tracks["a"], "position_s": 500.0 + i}
        codes.append(browser.post("/v1/listen/progress", json=report, headers=headers(T0 + 1 + i)).status_code)
    assert codes[-1] == 403
    refused = browser.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=headers(T0 + 3600))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "blocked"
    later = T0 + 86_400 + 3600  # the documented day is over
    assert browser.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=headers(later)).status_code == 200


def test_a_play_paused_past_its_url_continues_without_waiting_for_real_time(
    svc: Consentune, tracks: dict[str, str]
) -> None:
    """A listener pausing longer than the URL lives continues the same play; nothing else gets its budget."""
    c = client_for(svc)
    sid = session(c)
    first = play(c, sid, tracks["a"])
    url = first["stream_url"]
    opening = c.get(url, headers=headers(T0 + 5, **{TOKEN: sid, "Range": "bytes=0-999"}))
    total = int(opening.headers["content-range"].split("/")[1])
    later = T0 + 3600.0  # back from a one-hour pause: the URL expired long ago
    expired = c.get(url, headers=headers(later, **{TOKEN: sid, "Range": "bytes=1000-1999"}))
    assert expired.status_code == 403 and "expired" in expired.text
    at = total * 4 // 5  # 48 s into the 60-s track: beyond what 30 s of buffer allows a fresh play
    middle = {TOKEN: sid, "Range": f"bytes={at}-{at + 999}"}

    def play_again(resume: str | None, at: float, who: str = sid, track: str = tracks["a"]) -> dict[str, Any]:
        r = c.post(f"/v1/listen/tracks/{track}/play", params=None if resume is None else {"resume": resume},
                   headers=headers(at, **{TOKEN: who}))  # fmt: skip
        assert r.status_code == 200, r.text
        return dict(r.json())

    other = session(c)  # another session's old URL, a garbled one, or another track's: a fresh play
    stranger = play(c, other, tracks["a"], now=T0 + 10)["stream_url"]
    assert play_again(stranger, later)["resumed"] is False
    assert play_again("/stream/not-a-token", later + 1)["resumed"] is False
    fresh = play_again(url, later + 2, track=tracks["b"])
    assert fresh["resumed"] is False  # and this play of b is now the listener's latest
    assert play_again(url, later + 3)["resumed"] is False  # so a's old play can no longer be continued
    restarted = play_again(None, later + 4)["stream_url"]
    ahead = c.get(restarted, headers=headers(later + 5, **middle))
    assert ahead.status_code == 429  # a fresh play is held to real time from its own start

    sid2 = session(c, now=later + 10)  # the honest case, start to end
    url2 = play(c, sid2, tracks["a"], now=later + 10)["stream_url"]
    assert c.get(url2, headers=headers(later + 15, **{TOKEN: sid2, "Range": "bytes=0-999"})).status_code == 206
    back = later + 10 + 1800.0
    continued = play_again(url2, back, who=sid2)
    assert continued["resumed"] is True and continued["stream_url"] != url2
    mid = c.get(continued["stream_url"], headers=headers(back + 1, **{**middle, TOKEN: sid2}))
    assert mid.status_code == 206 and len(mid.content) == 1000
    superseded = c.get(url2, headers=headers(back + 2, **{TOKEN: sid2, "Range": "bytes=0-9"}))
    assert superseded.status_code == 403
    assert play_again(url2, back + RESUME_WINDOW_S, who=sid2)["resumed"] is False  # too long ago
