"""Stream serials: the 8-byte watermark payload that names a listener (account or session) and a minute.

No table and no lookup on the hot path: the serial *is* the account's id prefix and the
issue minute, encrypted with a keyed 64-bit Feistel permutation, so only the server can
read it and every worker derives the same serial from the same secret.

Layout before encryption (64 bits): 1 bit saying whether the listener is an account
(``acc_<16 hex>``) or an anonymous session (``sid_<32 hex>``), 40 bits of its id (the first
10 hex digits; two ids share a prefix with probability ~n²/2⁴¹, and the minute plus the
stream-mark records settle such a tie) and 23 bits of minutes since :data:`EPOCH`
(good until 2040).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from consentune.errors import InvalidInput

__all__ = ["EPOCH", "StreamSerial", "WatermarkKeys", "open_serial", "seal_serial", "watermark_keys"]

EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
_PREFIX_HEX = 10
_PREFIX_BITS = 4 * _PREFIX_HEX
_MINUTE_BITS = 23
_ROUNDS = 6
_LISTENER = re.compile(r"(acc|sid)_([0-9a-f]{16}|[0-9a-f]{32})")
_KINDS = ("acc", "sid")


@dataclass(frozen=True)
class StreamSerial:
    """What a serial says: ``listener_prefix`` (``acc_`` or ``sid_`` + 10 hex digits) and ``minute_at`` (Unix s)."""

    listener_prefix: str
    minute_at: int

    def matches(self, listener_id: str) -> bool:
        return listener_id.startswith(self.listener_prefix)


@dataclass(frozen=True)
class WatermarkKeys:
    """``mark`` places and checks the watermark; ``serial`` encrypts the payload."""

    mark: bytes
    serial: bytes


def watermark_keys(secret: bytes) -> WatermarkKeys:
    """Both keys, derived from the server's shield secret so every worker agrees."""

    def derive(label: bytes) -> bytes:
        return hmac.new(secret, label, hashlib.sha256).digest()

    return WatermarkKeys(derive(b"consentune-watermark-mark"), derive(b"consentune-watermark-serial"))


def seal_serial(*, listener_id: str, at: float, key: bytes) -> bytes:
    """The 8-byte payload for a stream issued at ``at`` (Unix seconds) to an account or anonymous session."""
    found = _LISTENER.fullmatch(listener_id)
    if found is None:
        raise InvalidInput(
            f"listener id {listener_id!r} is not acc_<16 hex> or sid_<32 hex>",
            hint="watermark listener accounts or sessions only",
        )
    minute = int((at - EPOCH) // 60)
    if not 0 <= minute < 1 << _MINUTE_BITS:
        raise InvalidInput(f"time {at} is outside the serial's range", hint="serials cover 2025-2040")
    kind = _KINDS.index(found.group(1))
    plain = (((kind << _PREFIX_BITS) | int(found.group(2)[:_PREFIX_HEX], 16)) << _MINUTE_BITS) | minute
    return _permute(plain, key, decrypt=False).to_bytes(8, "big")


def open_serial(payload: bytes, *, key: bytes) -> StreamSerial:
    """Decrypt a payload sealed by :func:`seal_serial` with the same ``key``."""
    if len(payload) != 8:
        raise InvalidInput(f"serial is {len(payload)} bytes", hint="a stream serial is 8 bytes")
    plain = _permute(int.from_bytes(payload, "big"), key, decrypt=True)
    minute = plain & ((1 << _MINUTE_BITS) - 1)
    prefix = (plain >> _MINUTE_BITS) & ((1 << _PREFIX_BITS) - 1)
    kind = _KINDS[plain >> (_MINUTE_BITS + _PREFIX_BITS)]
    return StreamSerial(f"{kind}_{prefix:0{_PREFIX_HEX}x}", EPOCH + 60 * minute)


def _permute(block: int, key: bytes, *, decrypt: bool) -> int:
    left, right = block >> 32, block & 0xFFFFFFFF
    rounds = range(_ROUNDS - 1, -1, -1) if decrypt else range(_ROUNDS)
    for r in rounds:
        if decrypt:
            left, right = right ^ _round(left, r, key), left
        else:
            left, right = right, left ^ _round(right, r, key)
    return (left << 32) | right


def _round(half: int, index: int, key: bytes) -> int:
    digest = hmac.new(key, bytes([index]) + half.to_bytes(4, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")
