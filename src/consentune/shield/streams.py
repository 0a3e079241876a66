"""Short-lived, session-bound signed stream URLs.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))``;
the payload is JSON naming the session, the track, the expiry and a random
nonce.  The URL carries only the token, so the track served is exactly the
one signed; because the session is inside, a leaked URL is useless to any
other session; because the issue time is inside, every worker can enforce
the real-time budget from the token alone, with no shared state.
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

from consentune.errors import AccessDenied, InvalidInput

_CONTEXT = b"consentune.shield.stream.v1\x00"
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
    """Signs and verifies stream tokens; ``ttl_s`` seconds of validity each."""

    def __init__(self, secret: bytes, *, ttl_s: float = 300.0) -> None:
        check_secret(secret, what="stream signing")
        check_ttl(ttl_s, what="stream token")
        self._secret = secret
        self.ttl_s = ttl_s

    def sign(
        self, *, session_id: str, track_id: str, now: float, valid_s: float | None = None, limit_s: float | None = None
    ) -> str:
        """A URL-safe token letting ``session_id`` fetch ``track_id`` until ``now + valid_s`` (default ttl_s);
        ``limit_s`` caps the audio it may fetch (a preview)."""
        return self.issue(session_id=session_id, track_id=track_id, now=now, valid_s=valid_s, limit_s=limit_s)[0]

    def issue(
        self, *, session_id: str, track_id: str, now: float, valid_s: float | None = None, limit_s: float | None = None
    ) -> tuple[str, StreamGrant]:
        """As :meth:`sign`, with the grant the token carries (so the issuer need not verify its own token)."""
        expires = now + (self.ttl_s if valid_s is None else valid_s)
        nonce = secrets.token_urlsafe(9)
        payload: dict[str, object] = {"s": session_id, "t": track_id, "e": expires, "i": now, "n": nonce}
        if limit_s is not None:
            payload["l"] = float(limit_s)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        grant = StreamGrant(track_id, float(now), nonce, None if limit_s is None else float(limit_s))
        return f"{b64encode(body)}.{b64encode(self._mac(body))}", grant

    def verify(self, token: str, *, session_id: str, now: float) -> str:
        """The token's track id; raises :class:`AccessDenied` saying which check failed."""
        return self.verify_play(token, session_id=session_id, now=now).track_id

    def verify_play(self, token: str, *, session_id: str, now: float) -> StreamGrant:
        """The grant of a valid token; raises :class:`AccessDenied` saying which check failed."""
        hint = "ask for a new stream URL by playing the track again"
        body, mac = _split(token)
        if not hmac.compare_digest(mac, self._mac(body)):
            raise AccessDenied("stream token was tampered with (signature does not match)", hint=hint)
        session, grant, expires_at = _payload(body)
        if now >= expires_at:
            raise AccessDenied(f"stream token expired at {expires_at:.3f} (now {now:.3f})", hint=hint)
        if not hmac.compare_digest(session.encode(), session_id.encode()):
            raise AccessDenied("stream token belongs to another session", hint="stream URLs work only in their session")
        return grant

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, _CONTEXT + body, hashlib.sha256).digest()


def _split(token: str) -> tuple[bytes, bytes]:
    malformed = AccessDenied(
        "stream token is malformed", hint="use the stream URL exactly as the play response gave it"
    )
    if not isinstance(token, str) or len(token) > 4096 or token.count(".") != 1:
        raise malformed
    body_text, mac_text = token.split(".")
    try:
        body, mac = b64decode(body_text), b64decode(mac_text)
    except ValueError:
        raise malformed from None
    if len(mac) != hashlib.sha256().digest_size:
        raise malformed
    return body, mac


def _payload(body: bytes) -> tuple[str, StreamGrant, float]:
    """(session, grant, expires_at).  Only reached for bodies we signed."""
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
