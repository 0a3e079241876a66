"""Stateless hashcash-style proof of work for suspicious clients.

A challenge is a signed token binding (subject, salt, difficulty, expiry);
the client finds a ``nonce`` such that ``sha256(salt + nonce)`` starts with
``difficulty_bits`` zero bits (about ``2**difficulty_bits`` hashes, ~65k for
16 bits: tens of milliseconds in a browser) and sends it back with the token.
Nothing is stored server-side, so a solved (token, nonce) pair can be
replayed by the same subject until the token expires; callers that care
record the time the subject passed instead (as the guard does).

Be honest about what this is: **friction, not a defence**.  A headless
browser or a few lines of code solve it quickly, and a scraper can pay it.
It slows automated bursts and makes every challenged request cost CPU; the
actual defence is that audio only flows through session-bound signed URLs
at real-time speed, and that the behavioural detector blocks sessions that
keep looking like scrapers after passing a challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from itertools import count

from consentune.errors import InvalidInput
from consentune.shield.streams import b64decode, b64encode, check_secret, check_ttl

_CONTEXT = b"consentune.shield.challenge.v1\x00"
MAX_DIFFICULTY_BITS = 32
MAX_NONCE_CHARS = 128


@dataclass(frozen=True)
class Challenge:
    """What the client needs: solve ``salt`` at ``difficulty_bits`` before ``expires_at`` (seconds)."""

    token: str
    salt: str
    difficulty_bits: int
    expires_at: float


class ChallengeIssuer:
    def __init__(self, secret: bytes, *, difficulty_bits: int = 16, ttl_s: float = 120.0) -> None:
        check_secret(secret, what="challenge")
        check_ttl(ttl_s, what="challenge")
        if not 1 <= difficulty_bits <= MAX_DIFFICULTY_BITS:
            raise InvalidInput(
                f"difficulty_bits={difficulty_bits!r} is outside 1..{MAX_DIFFICULTY_BITS}",
                hint="16 bits costs a browser tens of milliseconds; each extra bit doubles it",
            )
        self._secret = secret
        self.difficulty_bits = difficulty_bits
        self.ttl_s = ttl_s

    def issue(self, *, subject: str, now: float) -> Challenge:
        """A fresh challenge for ``subject`` (e.g. ``"session:<id>"``), valid ``ttl_s`` seconds."""
        salt = secrets.token_hex(16)
        expires_at = now + self.ttl_s
        payload = {"b": self.difficulty_bits, "e": expires_at, "s": salt, "u": subject}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        token = f"{b64encode(body)}.{b64encode(self._mac(body))}"
        return Challenge(token=token, salt=salt, difficulty_bits=self.difficulty_bits, expires_at=expires_at)

    def verify(self, *, token: str, nonce: str, subject: str, now: float) -> bool:
        """True when the token is ours, unexpired, bound to ``subject`` and ``nonce`` solves it."""
        body = self._authentic_body(token)
        if body is None or not isinstance(nonce, str) or len(nonce) > MAX_NONCE_CHARS:
            return False
        try:
            payload = json.loads(body)
            bits, expires_at, salt, bound = int(payload["b"]), float(payload["e"]), str(payload["s"]), payload["u"]
        except (ValueError, KeyError, TypeError):
            return False
        if now >= expires_at or not isinstance(bound, str):
            return False
        if not hmac.compare_digest(bound.encode(), subject.encode()):
            return False
        return leading_zero_bits(salt, nonce) >= bits

    def _authentic_body(self, token: str) -> bytes | None:
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
            return None
        body_text, mac_text = token.split(".")
        try:
            body, mac = b64decode(body_text), b64decode(mac_text)
        except ValueError:
            return None
        return body if hmac.compare_digest(mac, self._mac(body)) else None

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, _CONTEXT + body, hashlib.sha256).digest()


def leading_zero_bits(salt: str, nonce: str) -> int:
    """Leading zero bits of ``sha256((salt + nonce).encode())``."""
    digest = hashlib.sha256((salt + nonce).encode()).digest()
    return 256 - int.from_bytes(digest, "big").bit_length()


def solve(challenge: Challenge) -> str:
    """The reference solver: the first decimal nonce that meets the difficulty."""
    prefix = challenge.salt.encode()
    target = 256 - challenge.difficulty_bits
    for n in count():
        nonce = str(n)
        if int.from_bytes(hashlib.sha256(prefix + nonce.encode()).digest(), "big").bit_length() <= target:
            return nonce
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["Challenge", "ChallengeIssuer", "leading_zero_bits", "solve"]
