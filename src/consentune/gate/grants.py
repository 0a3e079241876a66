"""Work grants: the gate's permission for one batch of tracks, carried to a worker on any node.

The driver asks the gate once per batch (:meth:`PurposeGate.grant_work`); the
gate decides, logs every decision in one ledger append and signs a
:class:`WorkGrant` with Ed25519 over the job key, purpose, actor, the allowed
tracks (each with the SHA-256 of its original) and an expiry time.  A worker
holds only the public key: it can check a grant but never make one.  It reads
audio through :class:`GrantedReader`, which refuses anything a valid,
unexpired grant for the right purpose does not name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consentune.errors import AccessDenied, InvalidInput, StorageError
from consentune.gate import decode as _decode
from consentune.gate.blobs import open_blob_store
from consentune.types import Purpose, TrackId


@dataclass(frozen=True, slots=True)
class GrantItem:
    """One allowed track and the SHA-256 of its original upload (the blob the worker may read)."""

    track: TrackId
    content_sha256: str


@dataclass(frozen=True, slots=True)
class WorkGrant:
    """Signed, expiring, purpose-bound permission to read the audio of ``items``.

    ``key`` names the task it was issued for (e.g. ``job:12/task:3``);
    ``expires_at`` is epoch seconds; ``signature`` is Ed25519 over
    :meth:`message`.  Changing any field invalidates the signature.
    """

    key: str
    purpose: Purpose
    actor: str
    items: tuple[GrantItem, ...]
    expires_at: float
    signature: bytes = b""

    @property
    def tracks(self) -> tuple[TrackId, ...]:
        return tuple(item.track for item in self.items)

    def message(self) -> bytes:
        """The canonical bytes the signature covers."""
        body = {
            "v": 1,
            "key": self.key,
            "purpose": self.purpose,
            "actor": self.actor,
            "items": [[i.track, i.content_sha256] for i in self.items],
            "expires_at": repr(float(self.expires_at)),
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class GrantSigner:
    """Driver side (inside the gate): signs grants with a private key derived from a 32-byte seed."""

    def __init__(self, seed: bytes, *, ttl_s: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        if len(seed) != 32:
            raise InvalidInput(f"grant seed is {len(seed)} bytes", hint="derive a 32-byte seed from the service secret")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def verify_key(self) -> bytes:
        """The raw 32-byte public key workers check grants with."""
        return self._key.public_key().public_bytes_raw()

    def sign(self, *, key: str, purpose: Purpose, actor: str, items: tuple[GrantItem, ...]) -> WorkGrant:
        unsigned = WorkGrant(key, purpose, actor, items, self._clock() + self._ttl_s)
        return replace(unsigned, signature=self._key.sign(unsigned.message()))


class GrantVerifier:
    """Worker side: checks signature, expiry, purpose and membership; needs only the public key."""

    def __init__(self, verify_key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        try:
            self._key = Ed25519PublicKey.from_public_bytes(verify_key)
        except ValueError:
            raise InvalidInput(
                "grant verify key is not a raw Ed25519 public key", hint="pass PurposeGate.grant_verify_key"
            ) from None
        self._clock = clock

    def check(self, grant: WorkGrant, *, purpose: Purpose) -> None:
        """Raise :class:`AccessDenied` unless ``grant`` is genuine, unexpired and for ``purpose``."""
        self.authentic(grant)
        if grant.purpose != purpose:
            raise AccessDenied(
                f"work grant {grant.key!r} is for {grant.purpose!r}, not {purpose!r}",
                hint=f"request a grant for purpose {purpose!r}",
            )
        if self._clock() >= grant.expires_at:
            raise AccessDenied(
                f"work grant {grant.key!r} expired", hint="the driver re-grants the task; consent may have changed"
            )

    def authentic(self, grant: WorkGrant) -> None:
        """Raise :class:`AccessDenied` unless this gate signed ``grant`` exactly as it is."""
        try:
            self._key.verify(grant.signature, grant.message())
        except InvalidSignature:
            raise AccessDenied(
                f"work grant {grant.key!r} was not signed by this gate or was altered",
                hint="grants come only from PurposeGate.grant_work; request a new one",
            ) from None

    def item(self, grant: WorkGrant, track: TrackId, *, purpose: Purpose) -> GrantItem:
        """The grant's item for ``track`` after :meth:`check`; AccessDenied when the grant does not name it."""
        self.check(grant, purpose=purpose)
        found = next((i for i in grant.items if i.track == track), None)
        if found is None:
            raise AccessDenied(
                f"work grant {grant.key!r} does not cover track {track}",
                hint="the gate denied this track or it belongs to another batch",
            )
        return found


class GrantedReader:
    """The gate-side reader a worker uses: original audio only against a valid grant.

    ``blob_dir`` is the blob folder as this node sees it (shared storage on a
    cluster).  Bytes read are checked against the SHA-256 the grant names.
    """

    def __init__(self, *, blob_dir: Path | str, verify_key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._blobs = open_blob_store(blob_dir)
        self._verifier = GrantVerifier(verify_key, clock=clock)

    def read_audio(self, grant: WorkGrant, track: TrackId, *, purpose: Purpose) -> bytes:
        """Original bytes of ``track``."""
        item = self._verifier.item(grant, track, purpose=purpose)
        data = self._blobs.get(item.content_sha256)
        if hashlib.sha256(data).hexdigest() != item.content_sha256:
            raise StorageError(
                f"blob of track {track} does not match its digest", hint="restore the blob folder from backup"
            )
        return data

    def decode_audio(
        self, grant: WorkGrant, track: TrackId, *, purpose: Purpose, mono: bool = False, target_sr: int | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        """Decoded float32 samples (frames[, channels]) of ``track`` and their sample rate in Hz."""
        return _decode.decode(self.read_audio(grant, track, purpose=purpose), mono=mono, target_sr=target_sr)


__all__ = ["GrantItem", "GrantSigner", "GrantVerifier", "GrantedReader", "WorkGrant"]
