"""Signed stream URLs: bound to session, track and expiry; any change is refused with its reason."""

from __future__ import annotations

import base64

import pytest

from consentune.errors import AccessDenied, InvalidInput
from consentune.shield.streams import StreamSigner

SIGNER = StreamSigner(b"k" * 32, ttl_s=300.0)
NOW = 1_000_000.0


def test_round_trip_returns_the_track() -> None:
    token = SIGNER.sign(session_id="s1", track_id="trk_a", now=NOW)
    assert SIGNER.verify(token, session_id="s1", now=NOW + 299.9) == "trk_a"
    assert token.isascii() and "/" not in token and "+" not in token and "=" not in token


def test_tokens_are_unique_per_signing() -> None:
    assert SIGNER.sign(session_id="s", track_id="t", now=NOW) != SIGNER.sign(session_id="s", track_id="t", now=NOW)


def _denied(token: str, *, session_id: str = "s1", now: float = NOW) -> str:
    with pytest.raises(AccessDenied) as info:
        SIGNER.verify(token, session_id=session_id, now=now)
    assert info.value.hint
    return info.value.message


def test_tampering_any_character_fails() -> None:
    token = SIGNER.sign(session_id="s1", track_id="trk_a", now=NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i, char in enumerate(token):
        for other in (alphabet[(alphabet.index(char) + 1) % len(alphabet)], alphabet[(alphabet.index(char) + 17) % 65]):
            message = _denied(token[:i] + other + token[i + 1 :])
            assert "malformed" in message or "tampered" in message


def test_expired() -> None:
    token = SIGNER.sign(session_id="s1", track_id="trk_a", now=NOW)
    assert "expired" in _denied(token, now=NOW + 300.0)


def test_replay_from_another_session() -> None:
    token = SIGNER.sign(session_id="s1", track_id="trk_a", now=NOW)
    assert "another session" in _denied(token, session_id="s2")


def test_token_for_track_a_names_track_a_only() -> None:
    token_a = SIGNER.sign(session_id="s1", track_id="trk_a", now=NOW)
    assert SIGNER.verify(token_a, session_id="s1", now=NOW) != "trk_b"


def test_other_key_is_tampered() -> None:
    token = StreamSigner(b"x" * 32).sign(session_id="s1", track_id="trk_a", now=NOW)
    assert "tampered" in _denied(token)


@pytest.mark.parametrize("bad", ["", ".", "abc", "a.b.c", "!!!.???", "x" * 5000])
def test_malformed(bad: str) -> None:
    assert "malformed" in _denied(bad)


def test_weak_secret_and_bad_ttl_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        StreamSigner(b"short")
    with pytest.raises(InvalidInput):
        StreamSigner(b"k" * 32, ttl_s=0)


def test_the_token_reveals_nothing_it_carries() -> None:
    token = SIGNER.sign(session_id="sid_0123456789abcdef", track_id="trk_feedbeef", now=NOW, limit_s=30.0)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for carried in (b"sid_0123456789abcdef", b"0123456789", b"trk_feedbeef", b"feedbeef", b'"s"', b"1000300"):
        assert carried not in raw and carried.decode() not in token
    grant = SIGNER.verify_play(token, session_id="sid_0123456789abcdef", now=NOW + 1)
    assert (grant.track_id, grant.issued_at, grant.limit_s) == ("trk_feedbeef", NOW, 30.0)
