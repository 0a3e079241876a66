"""Identity cost and newcomer budgets over HTTP: sign-up proof of work, shared caps, the lead, no disclosure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.shield.verify import SignupPuzzle, WorkParams, solve_work
from tests.api.test_listen import TOKEN, client_for, headers

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600  # the start of a clock hour


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Consentune]:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}", shield_sim_clock=True,
        bench_mode=True, trusted_proxies=("127.0.0.1",), signal_ttl_s=0.0, identify_at_ingest=False,
        newcomer_budget="identity=0.01,address=0.05,prefix=1",  # 36 s per identity, 180 s per address per hour
    )  # fmt: skip
    service = open_service(settings)
    yield service
    service.close()


@pytest.fixture
def tracks(svc: Consentune, audio_files: dict[str, bytes]) -> dict[str, str]:
    from consentune.demo.synth import SongSpec, encode, synthesize

    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    minute = encode(synthesize(SongSpec(seed=5, duration_s=60.0, sample_rate=16_000)), 16_000, format="wav")
    a = svc.catalog.ingest(minute, filename="a.wav", artist=ada, title="Alpha", actor="t").track
    b = svc.catalog.ingest(audio_files["mp3"], filename="b.mp3", artist=ada, title="Beta", actor="t").track
    return {"a": a.id, "b": b.id}


def sign_up(c: TestClient, now: float = T0) -> tuple[str, str]:
    r = c.post("/v1/listen/accounts", headers=headers(now))
    assert r.status_code == 201, r.text
    body = r.json()
    return body["account_id"], body["token"]


def listener(c: TestClient, account_token: str, now: float = T0) -> str:
    r = c.post("/v1/listen/sessions", headers=headers(now, Authorization=f"Bearer {account_token}"))
    assert r.status_code == 201, r.text
    credential: str = r.json()["session_token"]
    return credential


def test_sign_up_asks_for_proof_of_work_and_only_a_solved_puzzle_verifies(svc: Consentune) -> None:
    c = client_for(svc)
    r = c.post("/v1/listen/accounts", headers=headers(T0))
    assert r.json()["verify_by"] == ["pow"]
    account, token = r.json()["account_id"], r.json()["token"]
    credential = listener(c, token)
    stored = svc.listen.session(credential)
    assert stored.account_verified_at is None  # unverified: a newcomer whatever it does
    auth = {"Authorization": f"Bearer {token}"}
    p = c.post("/v1/listen/accounts/verify/puzzle", headers=headers(T0, **auth)).json()
    assert p["n"] * p["r"] * 128 >= 4 * 2**20 and p["solutions"] >= 1
    params = WorkParams(n=p["n"], r=p["r"], solutions=p["solutions"], bits=p["bits"])
    puzzle = SignupPuzzle(p["token"], p["salt"], params, p["expires_at"])
    nonces = solve_work(puzzle)
    _other, other_token = sign_up(c)
    wrong = c.post("/v1/listen/accounts/verify/pow", json={"token": p["token"], "nonces": nonces},
                   headers=headers(T0 + 1, Authorization=f"Bearer {other_token}"))  # fmt: skip
    assert wrong.status_code == 400  # replayed for another account
    ok = c.post(
        "/v1/listen/accounts/verify/pow", json={"token": p["token"], "nonces": nonces}, headers=headers(T0 + 2, **auth)
    )
    assert ok.status_code == 204, ok.text
    assert svc.listen.session(credential).account_verified_at == T0 + 2
    again = c.post("/v1/listen/accounts/verify/pow", json={"token": p["token"], "nonces": nonces[:-1]},
                   headers=headers(T0 + 3, **auth))  # fmt: skip
    assert again.status_code == 400 and account.startswith("acc_")


def test_the_lead_and_streamed_audio_count_and_the_refusal_says_nothing(
    svc: Consentune, tracks: dict[str, str]
) -> None:
    c = client_for(svc)
    _account, token = sign_up(c)
    sid = listener(c, token)
    auth = {TOKEN: sid}
    first = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(T0, **auth))
    assert first.status_code == 200  # 30 s of lead charged (identity budget: 36 s an hour)
    second = c.post(f"/v1/listen/tracks/{tracks['b']}/play", headers=headers(T0 + 5, **auth))
    assert second.status_code == 200  # a 3-s track's lead: 3 s, 33 s in all
    third = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(T0 + 10, **auth))
    assert third.status_code == 200  # the same track again: nothing new
    url = third.json()["stream_url"]
    late = c.get(url, headers=headers(T0 + 70, **auth))  # the rest of track a: 30 s more than the budget holds
    assert late.status_code == 403 and late.json()["error"]["code"] == "newcomer_limit"
    error = late.json()["error"]
    assert not re.search(r"\d", error["message"] + error["hint"])
    part = c.get(url, headers=headers(T0 + 70, Range="bytes=0-1000", **auth))
    assert part.status_code == 206  # audio it already has is served again


def test_an_established_verified_listener_is_not_limited_and_vouches(svc: Consentune, tracks: dict[str, str]) -> None:
    c = client_for(svc, peer="198.51.100.20")
    account, token = sign_up(c)
    svc.store.mark_account_verified(account, at=T0 - 9 * 86400, kind="pow", subject=None)
    svc.store.set_account_established(account, at=T0 - 5 * 86400)
    sid = listener(c, token)
    for n in range(3):
        at = T0 + n * 200
        r = c.post(f"/v1/listen/tracks/{tracks['a']}/play", headers=headers(at, **{TOKEN: sid}))
        assert r.status_code == 200, r.text
        assert c.get(r.json()["stream_url"], headers=headers(at + 65, **{TOKEN: sid})).status_code == 206
    assert svc.newcomer_budget is not None
    assert svc.newcomer_budget.vouchers_at("198.51.100.20", now=T0 + 700) == (1, 1)
    assert svc.newcomer_budget.vouchers_at("198.51.101.20", now=T0 + 700) == (0, 0)
