"""Short-lived, session-bound, encrypted stream URLs.

A token is ``base64url(iv || AES-256-GCM(key, payload))``; the payload is
JSON naming the session (its public id, never the credential), the track,
the expiry, the issue time and a random nonce.  Encryption keeps all of it
unreadable to whoever sees the URL (a shared link, a proxy log, a browser
history); the GCM tag makes any change fail.  The session inside makes a
leaked URL useless to any other session; the issue time inside lets every
worker enforce the real-time budget from the token alone, with no shared
state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consentune.errors import AccessDenied, InvalidInput

_CONTEXT = b"consentune.shield.stream.v2\x00"
_IV_BYTES = 12
_TAG_BYTES = 16
MIN_SECRET_BYTES = 16


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64url without padding; non-canonical encodings raise ValueError."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if b64encode(data) != text:
        raise ValueError("non-canonical base64")
    return data


def check_secret(secret: bytes, *, what: str) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidInput(
            f"{what} secret is {len(secret)} bytes, fewer than {MIN_SECRET_BYTES}",
            hint="use 32 random bytes, e.g. secrets.token_bytes(32)",
        )


def check_ttl(ttl_s: float, *, what: str) -> None:
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise InvalidInput(f"{what} ttl_s={ttl_s!r} must be a positive number of seconds", hint="e.g. ttl_s=300")


@dataclass(frozen=True)
class StreamGrant:
    """What a valid token grants: a track, since when, which play (``nonce``), and an audio limit (previews)."""

    track_id: str
    issued_at: float
    nonce: str
    limit_s: float | None = None


class StreamSigner:
    """Seals and opens stream tokens; ``ttl_s`` seconds of validity each.

    The AES-256 key is derived from ``secret`` (HMAC-SHA256), so any secret of at least
    :data:`MIN_SECRET_BYTES` bytes works.
    """

    def __init__(self, secret: bytes, *, ttl_s: float = 300.0) -> None:
        check_secret(secret, what="stream signing")
        check_ttl(ttl_s, what="stream token")
        self._aead = AESGCM(hmac.new(secret, _CONTEXT + b"aes-256-gcm", hashlib.sha256).digest())
        self.ttl_s = ttl_s

    def sign(
        self, *, session_id: str, track_id: str, now: float, valid_s: float | None = None, limit_s: float | None = None
    ) -> str:
        """A URL-safe token letting ``session_id`` fetch ``track_id`` until ``now + valid_s`` (default ttl_s);
        ``limit_s`` caps the audio it may fetch (a preview)."""
        return self.issue(session_id=session_id, track_id=track_id, now=now, valid_s=valid_s, limit_s=limit_s)[0]

    def issue(
        self,
        *,
        session_id: str,
        track_id: str,
        now: float,
        valid_s: float | None = None,
        limit_s: float | None = None,
        started_at: float | None = None,
    ) -> tuple[str, StreamGrant]:
        """As :meth:`sign`, with the grant the token carries (so the issuer need not verify its own token).

        ``started_at`` (default ``now``) is when the play began: a play continued after its URL expired
        keeps its start, so its real-time budget goes on from there instead of restarting at zero.
        """
        expires = now + (self.ttl_s if valid_s is None else valid_s)
        began = now if started_at is None else min(float(started_at), now)
        nonce = secrets.token_urlsafe(9)
        payload: dict[str, object] = {"s": session_id, "t": track_id, "e": expires, "i": began, "n": nonce}
        if limit_s is not None:
            payload["l"] = float(limit_s)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        grant = StreamGrant(track_id, float(began), nonce, None if limit_s is None else float(limit_s))
        iv = secrets.token_bytes(_IV_BYTES)
        return b64encode(iv + self._aead.encrypt(iv, body, _CONTEXT)), grant

    def verify(self, token: str, *, session_id: str, now: float) -> str:
        """The token's track id; raises :class:`AccessDenied` saying which check failed."""
        return self.verify_play(token, session_id=session_id, now=now).track_id

    def verify_play(self, token: str, *, session_id: str, now: float) -> StreamGrant:
        """The grant of a valid token; raises :class:`AccessDenied` saying which check failed."""
        grant, expires_at = self._open(token, session_id=session_id)
        if now >= expires_at:
            raise AccessDenied(
                f"stream token expired at {expires_at:.3f} (now {now:.3f})",
                hint="ask for a new stream URL by playing the track again (send the old URL as `resume`)",
            )
        return grant

    def verify_ended(self, token: str, *, session_id: str, now: float, max_age_s: float) -> StreamGrant:
        """The grant of a token sealed by us for ``session_id`` whose play began at most ``max_age_s`` ago,
        expired or not: what a player continuing a paused play presents."""
        grant, _expires_at = self._open(token, session_id=session_id)
        if not 0.0 <= now - grant.issued_at <= max_age_s:
            raise AccessDenied(
                f"the play of that stream URL began more than {max_age_s:.0f} s ago", hint="play the track again"
            )
        return grant

    def _open(self, token: str, *, session_id: str) -> tuple[StreamGrant, float]:
        sealed = _decode(token)
        try:
            body = self._aead.decrypt(sealed[:_IV_BYTES], sealed[_IV_BYTES:], _CONTEXT)
        except InvalidTag:
            raise AccessDenied(
                "stream token was tampered with or sealed by another key",
                hint="ask for a new stream URL by playing the track again",
            ) from None
        session, grant, expires_at = _payload(body)
        if not hmac.compare_digest(session.encode(), session_id.encode()):
            raise AccessDenied("stream token belongs to another session", hint="stream URLs work only in their session")
        return grant, expires_at


def _decode(token: str) -> bytes:
    malformed = AccessDenied(
        "stream token is malformed", hint="use the stream URL exactly as the play response gave it"
    )
    if not isinstance(token, str) or len(token) > 4096:
        raise malformed
    try:
        sealed = b64decode(token)
    except ValueError:
        raise malformed from None
    if len(sealed) <= _IV_BYTES + _TAG_BYTES:
        raise malformed
    return sealed


def _payload(body: bytes) -> tuple[str, StreamGrant, float]:
    """(session, grant, expires_at).  Only reached for bodies we sealed."""
    try:
        payload = json.loads(body)
        session, track, expires_at = payload["s"], payload["t"], payload["e"]
        issued_at, nonce, limit = payload.get("i", expires_at), payload.get("n", ""), payload.get("l")
    except (ValueError, KeyError, TypeError, AttributeError):
        session = track = expires_at = issued_at = nonce = limit = None
    numbers = (expires_at, issued_at)
    if not (
        isinstance(session, str) and isinstance(track, str) and isinstance(nonce, str)
        and all(isinstance(x, float | int) for x in numbers) and (limit is None or isinstance(limit, float | int))
    ):  # fmt: skip
        raise AccessDenied("stream token payload is malformed", hint="ask for a new stream URL")
    limit_s = None if limit is None else float(limit)
    return session, StreamGrant(track, float(issued_at), nonce, limit_s), float(expires_at)


__all__ = ["StreamGrant", "StreamSigner"]
