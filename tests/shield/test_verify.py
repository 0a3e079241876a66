"""Sign-up verification: scrypt proof of work, e-mail links, the platform hook, and trust that needs it."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import replace

import pytest

from consentune.errors import Conflict, InvalidInput
from consentune.service import Consentune, signup_verification
from consentune.shield.detect import AccessEvent, ScraperDetector
from consentune.shield.verify import (
    EmailLinkVerifier,
    MemoryOutbox,
    SignupVerification,
    SignupWork,
    WorkParams,
    calibrate,
    normalized_email,
    solve_work,
    work_hash,
)

SECRET = b"k" * 32
T0 = 1_800_000_000.0
SMALL = WorkParams(n=16, r=1, solutions=4, bits=3)  # cheap enough for many cases; the rules are the same


@pytest.mark.parametrize("seed", range(6))
def test_a_solved_puzzle_verifies_and_every_altered_answer_is_refused(seed: int) -> None:
    rng = random.Random(seed)
    params = WorkParams(
        n=2 ** rng.randint(1, 6), r=rng.randint(1, 4), solutions=rng.randint(1, 8), bits=rng.randint(0, 4)
    )
    work = SignupWork(SECRET, params)
    puzzle = work.issue(account_id="acc_1", now=T0)
    nonces = solve_work(puzzle)
    assert len(set(nonces)) == params.solutions
    assert all(_zero_bits(params, puzzle.salt, n) >= params.bits for n in nonces)
    assert work.verify(token=puzzle.token, nonces=nonces, account_id="acc_1", now=T0 + 1)
    assert not work.verify(token=puzzle.token, nonces=nonces, account_id="acc_2", now=T0 + 1)  # replay elsewhere
    assert not work.verify(token=puzzle.token, nonces=nonces, account_id="acc_1", now=T0 + work.ttl_s)  # expired
    assert not work.verify(token=puzzle.token, nonces=nonces[:-1], account_id="acc_1", now=T0)  # too few
    if params.solutions > 1:
        assert not work.verify(token=puzzle.token, nonces=[nonces[0]] * params.solutions, account_id="acc_1", now=T0)
    other = SignupWork(b"o" * 32, params).issue(account_id="acc_1", now=T0)
    assert not work.verify(token=other.token, nonces=nonces, account_id="acc_1", now=T0)  # not our token
    tampered = puzzle.token[:-3] + ("A" if puzzle.token[-3] != "A" else "B") + puzzle.token[-2:]
    assert not work.verify(token=tampered, nonces=nonces, account_id="acc_1", now=T0)


def _zero_bits(params: WorkParams, salt: str, nonce: str) -> int:
    return 256 - int.from_bytes(work_hash(params, salt, nonce), "big").bit_length()


def test_a_nonce_that_misses_the_difficulty_is_refused() -> None:
    work = SignupWork(SECRET, SMALL)
    puzzle = work.issue(account_id="acc_1", now=T0)
    good = solve_work(puzzle)
    miss = next(n for n in map(str, range(10_000, 20_000)) if _zero_bits(SMALL, puzzle.salt, n) < SMALL.bits)
    assert not work.verify(token=puzzle.token, nonces=[*good[:-1], miss], account_id="acc_1", now=T0)
    assert work.verify(token=puzzle.token, nonces=good, account_id="acc_1", now=T0)


def test_the_token_reveals_neither_account_nor_salt() -> None:
    puzzle = SignupWork(SECRET, SMALL).issue(account_id="acc_0123456789abcdef", now=T0)
    assert "acc_" not in puzzle.token and puzzle.salt not in puzzle.token


@pytest.mark.parametrize("rate", [5.0, 40.0, 150.0, 900.0, 20_000.0])
@pytest.mark.parametrize("slowdown", [1.0, 4.0, 10.0])
def test_calibration_lands_within_a_factor_root_two_of_the_target(rate: float, slowdown: float) -> None:
    params = calibrate(native_rate=rate, target_s=1.0, browser_slowdown=slowdown)
    browser_s = params.expected_evaluations / (rate / slowdown)
    wanted = rate / slowdown
    if wanted >= params.solutions:  # below one evaluation per solution the puzzle cannot get cheaper
        assert 1 / math.sqrt(2) - 1e-9 <= browser_s <= math.sqrt(2) + 1e-9
    assert params.memory_bytes == 4 * 2**20  # 4 MiB per evaluation: memory-hard by default


def test_default_puzzle_is_memory_hard_and_solvable() -> None:
    work = SignupWork(SECRET)
    puzzle = work.issue(account_id="acc_x", now=T0)
    assert work.verify(token=puzzle.token, nonces=solve_work(puzzle), account_id="acc_x", now=T0)


def test_email_link_verifies_the_account_it_names_and_expires() -> None:
    outbox = MemoryOutbox()
    verifier = EmailLinkVerifier(secret=SECRET, outbox=outbox, link_base="https://music.example/verify")
    verifier.send_link(account_id="acc_1", email=" Ada+news@Example.org ", now=T0)
    (mail,) = outbox.sent
    assert mail.to == "Ada+news@Example.org" and "https://music.example/verify?token=" in mail.body
    token = mail.body.split("token=")[1].split()[0]
    assert "acc_1" not in token
    verified = verifier.confirm(token=token, now=T0 + 60)
    assert verified.account_id == "acc_1" and verified.kind == "email"
    verifier.send_link(account_id="acc_2", email="ada@example.org", now=T0)
    again = verifier.confirm(token=outbox.sent[1].body.split("token=")[1].split()[0], now=T0)
    assert again.subject == verified.subject  # the +tag names the same mailbox
    with pytest.raises(InvalidInput):
        verifier.confirm(token=token, now=T0 + verifier.ttl_s)
    with pytest.raises(InvalidInput):
        verifier.confirm(token=token[:-2] + "xx", now=T0)


@pytest.mark.parametrize("bad", ["", "ada", "ada@", "@example.org", "a b@example.org", "ada@localhost"])
def test_malformed_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalized_email(bad)


class PhoneCheck:
    """A stand-in for a platform's SMS check: evidence ``<phone>:<code>``, the code is the phone's last 4 digits."""

    def check(self, *, account_id: str, evidence: str) -> str | None:
        phone, _, code = evidence.partition(":")
        return phone if phone[-4:] == code else None


def _verification(svc: Consentune, methods: tuple[str, ...], outbox: MemoryOutbox) -> SignupVerification:
    return SignupVerification(
        methods=methods, accounts=svc.store, work=SignupWork(SECRET, SMALL),
        email=EmailLinkVerifier(secret=SECRET, outbox=outbox, link_base="/v"), hook=PhoneCheck(), hook_key=SECRET,
    )  # fmt: skip


def _account(svc: Consentune, address: str = "198.51.100.7") -> tuple[str, str]:
    account_id, token = svc.listen.create_account(address=address, now=T0)
    _credential, sid, _ = svc.listen.create_session(account_token=token, address=address, user_agent="ua", now=T0)
    return account_id, sid


def test_verification_is_stored_and_read_back_with_the_session(svc: Consentune) -> None:
    outbox = MemoryOutbox()
    v = _verification(svc, ("pow", "email", "hook"), outbox)
    by_work, sid_w = _account(svc)
    by_mail, sid_m = _account(svc)
    by_phone, sid_p = _account(svc)
    never, sid_n = _account(svc)
    puzzle = v.puzzle(account_id=by_work, now=T0)
    with pytest.raises(InvalidInput):  # a solution is bound to the account it was issued to
        v.solve_puzzle(account_id=never, token=puzzle.token, nonces=solve_work(puzzle), now=T0)
    v.solve_puzzle(account_id=by_work, token=puzzle.token, nonces=solve_work(puzzle), now=T0 + 1)
    v.send_email(account_id=by_mail, email="bo@example.org", now=T0)
    assert v.confirm_email(token=outbox.sent[0].body.split("token=")[1].split()[0], now=T0 + 2) == by_mail
    with pytest.raises(InvalidInput):
        v.check_hook(account_id=by_phone, evidence="+15550001234:9999", now=T0)
    v.check_hook(account_id=by_phone, evidence="+15550001234:1234", now=T0 + 3)
    read = {sid: svc.store.listener_session(sid) for sid in (sid_w, sid_m, sid_p, sid_n)}
    assert [None if s is None else s.account_verified_at for s in read.values()] == [T0 + 1, T0 + 2, T0 + 3, None]


def test_one_mailbox_or_phone_verifies_one_account(svc: Consentune) -> None:
    outbox = MemoryOutbox()
    v = _verification(svc, ("email", "hook"), outbox)
    first, second, third, fourth = (_account(svc)[0] for _ in range(4))
    v.send_email(account_id=first, email="cy@example.org", now=T0)
    v.send_email(account_id=second, email="CY+farm7@example.org", now=T0)
    v.confirm_email(token=outbox.sent[0].body.split("token=")[1].split()[0], now=T0)
    with pytest.raises(Conflict):
        v.confirm_email(token=outbox.sent[1].body.split("token=")[1].split()[0], now=T0)
    v.check_hook(account_id=third, evidence="+15550009876:9876", now=T0)
    with pytest.raises(Conflict):
        v.check_hook(account_id=fourth, evidence="+15550009876:9876", now=T0)


def test_methods_the_platform_did_not_choose_are_refused(svc: Consentune) -> None:
    v = _verification(svc, ("email",), MemoryOutbox())
    with pytest.raises(InvalidInput, match="does not verify accounts by pow"):
        v.puzzle(account_id="acc_1", now=T0)
    with pytest.raises(InvalidInput):
        SignupVerification(methods=("sms",), accounts=svc.store)
    with pytest.raises(InvalidInput, match="not configured"):
        SignupVerification(methods=("hook",), accounts=svc.store)


def test_default_settings_ask_for_proof_of_work(svc: Consentune) -> None:
    v = signup_verification(svc.settings, SECRET, svc.store)
    assert v.methods == ("pow",) and not v.verified_at_signup and v.work is not None
    assert v.work.params.memory_bytes >= 4 * 2**20


def _events(account: str, verified: bool, start: float) -> list[AccessEvent]:
    """Honest plays of an account 400 days old: play, stream, a progress report every 15 s."""
    base = AccessEvent(at=start, kind="play", session_id=f"sid-{account}", address=f"192.0.2.{len(account)}",
                       user_agent="ua", account_id=account, account_created_at=start - 400 * 86400,
                       account_verified=verified, duration_s=180.0)  # fmt: skip
    out = []
    for n in range(6):
        at, track = start + n * 300, f"trk_{n}"
        first = replace(base, at=at, track_id=track, catalog_index=n)
        out += [first, replace(first, kind="stream", at=at + 1, nbytes=180 * 16_000, track_bytes=180 * 16_000)]
        out += [replace(first, kind="progress", at=at + t, position_s=float(t)) for t in range(15, 181, 15)]
    return out


def test_an_unverified_account_never_becomes_established() -> None:
    detector = ScraperDetector(crawler_tokens=[])
    for verified, account in ((True, "acc_ver"), (False, "acc_unverified")):
        for event in _events(account, verified, T0):
            detector.observe(event)
    changes = dict(detector.drain_trust_changes())
    assert changes.get("acc_ver") is not None  # the same listening establishes a verified account
    assert "acc_unverified" not in changes


def test_hashes_are_scrypt() -> None:
    expected = hashlib.scrypt(b"7", salt=b"salt", n=16, r=1, p=1, dklen=32)
    assert work_hash(WorkParams(n=16, r=1, solutions=1, bits=0), "salt", "7") == expected
