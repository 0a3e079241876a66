"""Proof-of-work challenges: stateless, subject-bound, expiring; the reference solver solves them."""

from __future__ import annotations

import pytest

from consentune.errors import InvalidInput
from consentune.shield.challenge import Challenge, ChallengeIssuer, leading_zero_bits, solve

ISSUER = ChallengeIssuer(b"c" * 32, difficulty_bits=10, ttl_s=120.0)
NOW = 5_000.0


def test_solved_challenge_verifies() -> None:
    challenge = ISSUER.issue(subject="session:a", now=NOW)
    nonce = solve(challenge)
    assert leading_zero_bits(challenge.salt, nonce) >= 10
    assert ISSUER.verify(token=challenge.token, nonce=nonce, subject="session:a", now=NOW + 1)
    assert challenge.expires_at == NOW + 120.0 and challenge.difficulty_bits == 10


def test_default_difficulty_is_solvable() -> None:
    issuer = ChallengeIssuer(b"c" * 32)
    challenge = issuer.issue(subject="s", now=NOW)
    assert challenge.difficulty_bits == 16
    assert issuer.verify(token=challenge.token, nonce=solve(challenge), subject="s", now=NOW)


def test_wrong_nonce_other_subject_expiry_and_foreign_key_fail() -> None:
    challenge = ISSUER.issue(subject="session:a", now=NOW)
    nonce = solve(challenge)
    wrong = next(str(n) for n in range(10**6) if leading_zero_bits(challenge.salt, str(n)) < 10)
    assert not ISSUER.verify(token=challenge.token, nonce=wrong, subject="session:a", now=NOW)
    assert not ISSUER.verify(token=challenge.token, nonce=nonce, subject="session:b", now=NOW)
    assert not ISSUER.verify(token=challenge.token, nonce=nonce, subject="session:a", now=NOW + 120.0)
    other = ChallengeIssuer(b"d" * 32, difficulty_bits=10)
    assert not other.verify(token=challenge.token, nonce=nonce, subject="session:a", now=NOW)


def test_difficulty_and_salt_come_from_the_signed_token() -> None:
    challenge = ISSUER.issue(subject="s", now=NOW)
    easy = Challenge(challenge.token, challenge.salt, 1, challenge.expires_at)
    cheap = next(str(n) for n in range(10**6) if 1 <= leading_zero_bits(challenge.salt, str(n)) < 10)
    assert solve(easy) and not ISSUER.verify(token=challenge.token, nonce=cheap, subject="s", now=NOW)
    for i in range(len(challenge.token)):
        flipped = challenge.token[:i] + ("A" if challenge.token[i] != "A" else "B") + challenge.token[i + 1 :]
        assert not ISSUER.verify(token=flipped, nonce=solve(challenge), subject="s", now=NOW)


@pytest.mark.parametrize("token", ["", "x", "a.b", "...", "a" * 5000])
def test_garbage_never_raises(token: str) -> None:
    assert not ISSUER.verify(token=token, nonce="1", subject="s", now=NOW)


def test_bad_configuration() -> None:
    with pytest.raises(InvalidInput):
        ChallengeIssuer(b"c" * 32, difficulty_bits=0)
    with pytest.raises(InvalidInput):
        ChallengeIssuer(b"c" * 32, difficulty_bits=64)
    with pytest.raises(InvalidInput):
        ChallengeIssuer(b"c")
