"""Checkpoints (tree size + root) in the C2SP signed-note format, signed with Ed25519.

Using the public note / tlog-checkpoint formats means third parties can check
our checkpoints with existing transparency tooling instead of trusting ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consentune.errors import InvalidInput, VerificationFailed
from consentune.ledger.merkle import HASH_SIZE
from consentune.secretfile import create_private_file, read_private_file

ED25519_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "
KEY_FILE_PREFIX = "PRIVATE+KEY+"
MAX_SIGNATURES = 100

_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")


def b64decode_strict(text: str) -> bytes:
    """Decode standard padded base64, accepting only the one canonical spelling.

    Raises
    ------
    ValueError
        If ``text`` is not canonical base64 (bad characters, padding or padding bits).
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"{text[:40]!r} is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"{text[:40]!r} is not canonical base64")
    return raw


def b64encode(raw: bytes) -> str:
    """Encode as standard padded base64 text."""
    return base64.b64encode(raw).decode("ascii")


def _has_control(text: str, *, allow: str = "") -> bool:
    return any((ord(char) < 0x20 or ord(char) == 0x7F) and char not in allow for char in text)


def check_name(name: str, what: str = "name") -> None:
    """Origins and key names must be non-empty with no whitespace and no ``+``."""
    if not name or "+" in name or any(char.isspace() for char in name):
        raise InvalidInput(
            f"{what} {name!r} must be non-empty without whitespace or '+'",
            hint="use a URL-like name such as 'consentune.example/ledger'",
        )
    if _has_control(name):
        raise InvalidInput(f"{what} {name!r} contains control characters", hint="remove them")


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte note key ID: SHA-256(name, newline, type byte, key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A commitment to the first ``size`` leaves of the log named ``origin``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidInput(f"checkpoint size {self.size!r} must be an int >= 0", hint="")
        if len(self.root_hash) != HASH_SIZE:
            raise InvalidInput(
                f"root hash is {len(self.root_hash)} bytes, not {HASH_SIZE}",
                hint="pass the raw SHA-256 root, not hex or base64",
            )
        for line in self.extensions:
            if not line or _has_control(line):
                raise InvalidInput(
                    f"extension line {line!r} is empty or has control characters",
                    hint="extension lines are single non-empty lines of text",
                )

    def body(self) -> str:
        """Return the checkpoint text that is signed (ends with a newline)."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


class LogSigner:
    """An Ed25519 note signer bound to a key name (usually the log origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_name(name, "key name")
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def generate(cls, name: str) -> LogSigner:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw32: bytes) -> LogSigner:
        """Rebuild a signer from its 32-byte Ed25519 seed."""
        if len(raw32) != 32:
            raise InvalidInput(
                f"Ed25519 private key must be 32 bytes, got {len(raw32)}",
                hint="pass the value returned by private_bytes()",
            )
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw32))

    def private_bytes(self) -> bytes:
        """Return the 32-byte Ed25519 seed; keep it secret."""
        return self._key.private_bytes_raw()

    def verifier_key(self) -> str:
        """Return the public verifier key string ``name+keyid+base64(0x01||key)``."""
        return f"{self.name}+{self.key_id.hex()}+{b64encode(ED25519_TYPE + self.public_key)}"

    def sign_note(self, body: str) -> str:
        """Sign note text ``body`` and return the full signed note."""
        _check_note_text(body)
        signature = self._key.sign(body.encode("utf-8"))
        return f"{body}\n{SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id + signature)}\n"

    def sign_checkpoint(self, cp: Checkpoint) -> str:
        """Return ``cp`` as a signed note."""
        return self.sign_note(cp.body())


def _check_note_text(body: str) -> None:
    if not body.endswith("\n") or "\n\n" in body or body.startswith("\n"):
        raise InvalidInput(
            "note text must be non-empty lines each ending in a newline",
            hint="build it with Checkpoint.body()",
        )


def _key_file_text(signer: LogSigner) -> str:
    seed = b64encode(ED25519_TYPE + signer.private_bytes())
    return f"{KEY_FILE_PREFIX}{signer.name}+{signer.key_id.hex()}+{seed}\n"


def _parse_key_file(text: str, path: Path) -> LogSigner:
    parts = text.strip().removeprefix(KEY_FILE_PREFIX).split("+", 2)
    bad = InvalidInput(
        f"key file {path} is not a PRIVATE+KEY+<name>+<id>+<base64> line",
        hint="restore the file from backup or move it away to create a new key",
    )
    if not text.startswith(KEY_FILE_PREFIX) or len(parts) != 3:
        raise bad
    name, hex_id, encoded = parts
    try:
        raw = b64decode_strict(encoded)
    except ValueError as exc:
        raise bad from exc
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise bad
    signer = LogSigner.from_private_bytes(name, raw[1:])
    if signer.key_id.hex() != hex_id:
        raise bad
    return signer


def load_or_create_signer(path: Path, name: str) -> LogSigner:
    """Load the signing key at ``path``, creating it (mode 0600) on first use.

    Raises
    ------
    InvalidInput
        If the file is group/other accessible, empty or malformed, or for another name.
    """
    if not path.exists():
        signer = LogSigner.generate(name)
        if create_private_file(path, _key_file_text(signer).encode()):
            return signer
        # another process created it first; use theirs
    raw = read_private_file(path, what="key file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""  # reported as malformed below
    signer = _parse_key_file(text, path)
    if signer.name != name:
        raise InvalidInput(
            f"key file {path} is for {signer.name!r}, not {name!r}",
            hint="point the ledger at the right key file or fix the configured origin",
        )
    return signer


def parse_verifier_key(verifier_key: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Split ``name+keyid+base64(0x01||key)`` into name, key ID and public key."""
    parts = verifier_key.split("+", 2)
    bad = InvalidInput(
        f"verifier key {verifier_key[:60]!r} is not <name>+<8 hex>+<base64(0x01||key)>",
        hint="copy the key exactly as published by the log",
    )
    if len(parts) != 3 or not _KEY_ID_RE.fullmatch(parts[1]):
        raise bad
    name, hex_id, encoded = parts
    check_name(name, "key name")
    try:
        raw = b64decode_strict(encoded)
    except ValueError as exc:
        raise bad from exc
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise bad
    if key_id(name, raw[1:]).hex() != hex_id:
        raise InvalidInput(
            f"verifier key ID {hex_id} does not match its name and key",
            hint="the key string was altered; fetch it again",
        )
    return name, bytes.fromhex(hex_id), Ed25519PublicKey.from_public_bytes(raw[1:])


def _fail(message: str) -> VerificationFailed:
    return VerificationFailed(message, hint="do not trust this checkpoint")


def _split_note(note: str) -> tuple[str, list[str]]:
    """Split a signed note into its text and its signature lines."""
    if _has_control(note, allow="\n"):
        raise _fail("note contains control characters")
    separator = note.rfind("\n\n")
    if separator < 0 or not note.endswith("\n"):
        raise _fail("note has no blank line before its signatures")
    body, signature_block = note[: separator + 1], note[separator + 2 :]
    lines = signature_block[:-1].split("\n") if signature_block else []
    if not lines or len(lines) > MAX_SIGNATURES:
        raise _fail(f"note has {len(lines)} signature lines")
    return body, lines


def _parse_signature(line: str) -> tuple[str, bytes, bytes]:
    """Return (key name, key ID, signature) from one ``— name base64`` line."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise _fail(f"signature line {line[:40]!r} does not start with an em dash")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise _fail(f"signature line {line[:40]!r} is not '— name base64'")
    name, encoded = parts
    try:
        check_name(name, "key name")
        raw = b64decode_strict(encoded)
    except (InvalidInput, ValueError) as exc:
        raise _fail(f"signature line {line[:40]!r} is malformed") from exc
    if len(raw) < 5:
        raise _fail(f"signature for {name!r} is too short")
    return name, raw[:4], raw[4:]


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parse checkpoint text strictly, without checking any signature."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise _fail("checkpoint needs origin, size and root lines, each ending in a newline")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not _SIZE_RE.fullmatch(size_text) or len(size_text) > 20:
        raise _fail(f"checkpoint size {size_text[:30]!r} is not a plain decimal")
    try:
        root = b64decode_strict(root_text)
        return Checkpoint(origin, int(size_text), root, tuple(extensions))
    except (InvalidInput, ValueError) as exc:
        raise _fail(f"checkpoint is malformed: {exc}") from exc


def verify_checkpoint(note: str, verifier_key: str) -> Checkpoint:
    """Return the checkpoint in ``note`` if ``verifier_key`` validly signed it.

    Signatures from other keys are ignored; a bad signature from this key fails.
    """
    name, wanted_id, public_key = parse_verifier_key(verifier_key)
    body, lines = _split_note(note)
    verified = False
    for signer_name, signer_id, signature in map(_parse_signature, lines):
        if (signer_name, signer_id) != (name, wanted_id):
            continue
        try:
            public_key.verify(signature, body.encode("utf-8"))
        except InvalidSignature as exc:
            raise _fail(f"signature by {name!r} does not match the checkpoint") from exc
        verified = True
    if not verified:
        raise _fail(f"note carries no signature by {name!r} ({wanted_id.hex()})")
    return parse_checkpoint_body(body)


__all__ = [
    "Checkpoint",
    "LogSigner",
    "b64decode_strict",
    "b64encode",
    "key_id",
    "load_or_create_signer",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "verify_checkpoint",
]
