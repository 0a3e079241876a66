"""API keys.  A key is ``ctn_<id>_<secret>``; only SHA-256 of the whole key is stored.

The secret has 256 bits of entropy, so a fast hash is enough: there is
nothing to brute-force, unlike a human password.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from consentune.errors import AccessDenied, AuthenticationFailed, InvalidInput, NotFound
from consentune.ports import ApiKeyRecord, KeyRepo
from consentune.types import ArtistId, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role, and for artists the only artist they may act for."""

    key_id: str
    role: Role
    artist_id: ArtistId | None

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.artist_id or self.key_id}"

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            names = " or ".join(r.value for r in roles)
            raise AccessDenied(
                f"this needs the {names} role; your key is {self.role.value}",
                hint="use a key with that role",
            )

    def require_artist(self, artist_id: ArtistId) -> None:
        """Admins may act for anyone; an artist only for themself."""
        if self.role is Role.ADMIN:
            return
        if self.role is not Role.ARTIST or self.artist_id != artist_id:
            raise AccessDenied("you may only see and change your own artist data", hint="use your own artist key")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ApiKeys:
    def __init__(self, repo: KeyRepo, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._repo = repo
        self._clock = clock

    def create(self, *, role: Role, artist_id: ArtistId | None = None, label: str = "") -> tuple[ApiKeyRecord, str]:
        """Create a key; the returned secret is shown once and never stored."""
        if (role is Role.ARTIST) != (artist_id is not None):
            raise InvalidInput(
                "artist keys need an artist and other keys must not have one",
                hint="pass --artist only with --role artist",
            )
        key_id = secrets.token_hex(6)
        secret = f"ctn_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(key_id, role, artist_id, label, self._clock(), None)
        self._repo.add_key(record, _digest(secret))
        return record, secret

    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise AuthenticationFailed(
                "no API key given", hint="send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        return self.authenticate_digest(_digest(secret.strip()))

    def authenticate_digest(self, digest: str) -> Principal:
        """The principal of the key whose SHA-256 is ``digest`` (what a dashboard session holds)."""
        record = self._repo.key_by_secret(digest)
        if record is None or record.revoked_at is not None:
            raise AuthenticationFailed("unknown or revoked API key", hint="create a key with `consentune keys create`")
        return Principal(record.id, record.role, record.artist_id)

    @staticmethod
    def digest(secret: str) -> str:
        """SHA-256 (hex) of a key as stored; a session keeps this, never the key itself."""
        return _digest(secret.strip())

    def list(self) -> list[ApiKeyRecord]:
        return self._repo.list_keys()

    def revoke(self, key_id: str) -> None:
        if not self._repo.revoke_key(key_id, self._clock()):
            raise NotFound(f"no active key {key_id!r}", hint="list keys with `consentune keys list`")


__all__ = ["ApiKeys", "Principal"]
