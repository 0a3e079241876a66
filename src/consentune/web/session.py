"""Dashboard sessions and CSRF tokens: HMAC-signed, nothing secret inside, checked on every request.

A session cookie carries the SHA-256 of the API key the user signed in with
(what the key table stores, never the key), a random session nonce and the
issue time, signed with a key derived from the data folder's secret.  Each
request looks the key up again, so revoking the key ends its sessions at
once.  CSRF tokens are an HMAC of the session nonce: a page can only post
back with a token from a page the same session loaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "consentune_session"
LOGIN_COOKIE = "consentune_login"
SESSION_MAX_AGE_S = 8 * 3600
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Session:
    key_digest: str
    nonce: str
    issued_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: str, payload: str) -> str:
    return _b64(hmac.new(key, f"{label}\n{payload}".encode(), hashlib.sha256).digest())


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def seal(key: bytes, session: Session) -> str:
    """The cookie value for ``session``."""
    payload = _b64(json.dumps([session.key_digest, session.nonce, session.issued_at]).encode())
    return f"{_VERSION}.{payload}.{_mac(key, 'session', payload)}"


def unseal(key: bytes, value: str | None, *, now: float) -> Session | None:
    """The session in a cookie value, or None if it is absent, altered, malformed or expired."""
    if not value or value.count(".") != 2:
        return None
    version, payload, mac = value.split(".")
    if version != _VERSION or not hmac.compare_digest(mac, _mac(key, "session", payload)):
        return None
    try:
        digest, nonce, issued = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    if not (isinstance(digest, str) and isinstance(nonce, str) and isinstance(issued, int)):
        return None
    if not 0 <= now - issued < SESSION_MAX_AGE_S:
        return None
    return Session(digest, nonce, issued)


def csrf_token(key: bytes, nonce: str) -> str:
    """The token forms of the session (or login page) with ``nonce`` must send back."""
    return _mac(key, "csrf", nonce)


def csrf_ok(key: bytes, nonce: str | None, token: str | None) -> bool:
    return bool(nonce and token) and hmac.compare_digest(csrf_token(key, nonce or ""), token or "")


__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "Session",
    "csrf_ok",
    "csrf_token",
    "new_nonce",
    "seal",
    "unseal",
]
