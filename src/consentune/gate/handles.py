"""Track handles: unforgeable, expiring proof that the gate allowed one (track, purpose, action)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from consentune.errors import AccessDenied
from consentune.types import Purpose, TrackId

ACTIONS = frozenset({"read-audio", "read-features", "write-features", "read-plays"})


@dataclass(frozen=True, slots=True)
class TrackHandle:
    """Returned only for allowed tracks; every content read presents one back to the gate."""

    track: TrackId
    purpose: Purpose
    action: str
    actor: str
    expires_at: float
    token: bytes


class HandleMinter:
    """Mints and checks handles with a per-gate secret, so no other code can make one."""

    def __init__(self, *, ttl_s: float) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl_s = ttl_s

    def mint(self, *, track: TrackId, purpose: Purpose, action: str, actor: str) -> TrackHandle:
        expires = time.time() + self._ttl_s
        return TrackHandle(
            track,
            purpose,
            action,
            actor,
            expires,
            self._mac(track, purpose, action, actor, expires),
        )

    def check(self, handle: TrackHandle, *, action: str) -> None:
        expected = self._mac(handle.track, handle.purpose, handle.action, handle.actor, handle.expires_at)
        if not hmac.compare_digest(expected, handle.token):
            raise AccessDenied(
                "track handle was not issued by this gate",
                hint="request access through PurposeGate.request",
            )
        if handle.action != action:
            raise AccessDenied(
                f"handle grants {handle.action!r}, not {action!r}",
                hint=f"request access with action={action!r}",
            )
        if time.time() >= handle.expires_at:
            raise AccessDenied("track handle has expired", hint="request access again; consent may have changed")

    def _mac(self, track: str, purpose: str, action: str, actor: str, expires: float) -> bytes:
        message = "\x1f".join((track, purpose, action, actor, repr(expires))).encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()


__all__ = ["ACTIONS", "HandleMinter", "TrackHandle"]
