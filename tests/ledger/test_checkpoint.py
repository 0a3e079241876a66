"""Checkpoints as C2SP signed notes: format, key IDs, strict parsing, key files."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentune.errors import InvalidInput, VerificationFailed
from consentune.ledger import (
    Checkpoint,
    LogSigner,
    load_or_create_signer,
    parse_verifier_key,
    verify_checkpoint,
)
from consentune.ledger.checkpoint import b64decode_strict

ORIGIN = "consentune.example/ledger"
SEED = bytes(range(32))
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def signer() -> LogSigner:
    return LogSigner.from_private_bytes(ORIGIN, SEED)


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return Checkpoint(ORIGIN, 42, ROOT, ("ext one",))


def test_body_format(checkpoint: Checkpoint) -> None:
    root = base64.b64encode(ROOT).decode()
    assert checkpoint.body() == f"{ORIGIN}\n42\n{root}\next one\n"


def test_signed_note_layout_and_key_id(signer: LogSigner, checkpoint: Checkpoint) -> None:
    note = signer.sign_checkpoint(checkpoint)
    body, signature_line = note.split("\n\n")
    assert body + "\n" == checkpoint.body()
    assert signature_line.startswith(f"\u2014 {ORIGIN} ") and signature_line.endswith("\n")
    raw = base64.b64decode(signature_line.split(" ")[2])
    public = signer.public_key
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert raw[:4] == expected_id
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], checkpoint.body().encode())


def test_verifier_key_format(signer: LogSigner) -> None:
    name, hex_id, key = signer.verifier_key().split("+", 2)
    assert name == ORIGIN
    assert bytes.fromhex(hex_id) == signer.key_id
    assert base64.b64decode(key) == b"\x01" + signer.public_key
    assert parse_verifier_key(signer.verifier_key())[:2] == (ORIGIN, signer.key_id)


def test_round_trip(signer: LogSigner, checkpoint: Checkpoint) -> None:
    note = signer.sign_checkpoint(checkpoint)
    assert verify_checkpoint(note, signer.verifier_key()) == checkpoint
    empty = Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert verify_checkpoint(signer.sign_checkpoint(empty), signer.verifier_key()) == empty


def test_foreign_signatures_are_ignored(signer: LogSigner, checkpoint: Checkpoint) -> None:
    witness = LogSigner.generate("witness.example/w1")
    note = signer.sign_checkpoint(checkpoint)
    cosigned = note + witness.sign_checkpoint(checkpoint).split("\n\n")[1]
    assert verify_checkpoint(cosigned, signer.verifier_key()) == checkpoint
    assert verify_checkpoint(cosigned, witness.verifier_key()) == checkpoint
    with pytest.raises(VerificationFailed, match="no signature"):
        verify_checkpoint(witness.sign_checkpoint(checkpoint), signer.verifier_key())


def test_impostor_with_same_name_fails(signer: LogSigner, checkpoint: Checkpoint) -> None:
    impostor = LogSigner.generate(ORIGIN)
    with pytest.raises(VerificationFailed):
        verify_checkpoint(impostor.sign_checkpoint(checkpoint), signer.verifier_key())


def _tampered(note: str) -> list[str]:
    body, signatures = note.split("\n\n")
    sig_b64 = signatures.split(" ")[2].rstrip("\n")
    raw = bytearray(base64.b64decode(sig_b64))
    raw[10] ^= 1
    return [
        note.replace("\n42\n", "\n43\n"),
        note.replace("\n42\n", "\n042\n"),
        note.replace("\n42\n", "\n+42\n"),
        note.replace("ext one", "ext two"),
        note.replace("\n\n", "\n"),
        note.replace("\n\n", "\n\n\n"),
        note.rstrip("\n"),
        note + "\n",
        note.replace("\u2014", "-"),
        note.replace(sig_b64, base64.b64encode(bytes(raw)).decode()),
        note.replace(sig_b64, sig_b64.rstrip("=")),
        note.replace(f"\u2014 {ORIGIN} ", f"\u2014 {ORIGIN}  "),
        note.replace("\n", "\r\n"),
        body + "\n\n",
        "",
    ]


def test_tampering_fails(signer: LogSigner, checkpoint: Checkpoint) -> None:
    for bad in _tampered(signer.sign_checkpoint(checkpoint)):
        with pytest.raises(VerificationFailed):
            verify_checkpoint(bad, signer.verifier_key())


def test_body_without_extensions_and_blank_line_rejected(signer: LogSigner) -> None:
    body = f"{ORIGIN}\n1\n{base64.b64encode(ROOT).decode()}\n\nextra\n"
    with pytest.raises(InvalidInput):
        signer.sign_note(body)


def test_non_canonical_root_base64_rejected(signer: LogSigner) -> None:
    root_text = base64.b64encode(ROOT).decode()
    # The last character before "=" carries 2 padding bits; setting one keeps
    # the decoded bytes the same under lenient decoders.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = root_text[-2]
    sloppy = root_text[:-2] + alphabet[alphabet.index(last) | 1] + "="
    assert sloppy != root_text
    note = signer.sign_note(f"{ORIGIN}\n1\n{sloppy}\n")
    with pytest.raises(VerificationFailed, match="malformed"):
        verify_checkpoint(note, signer.verifier_key())


@pytest.mark.parametrize("text", ["YQ", "YR==", " YQ==", "YQ==\n", "Y Q==", "YQ=="[:-1] + "\u00e9"])
def test_strict_base64(text: str) -> None:
    with pytest.raises(ValueError):
        b64decode_strict(text)
    assert b64decode_strict("YQ==") == b"a"


@pytest.mark.parametrize("origin", ["", "has space", "a+b", "tab\there", "nl\n"])
def test_bad_origins(origin: str) -> None:
    with pytest.raises(InvalidInput):
        Checkpoint(origin, 1, ROOT)
    with pytest.raises(InvalidInput):
        LogSigner.generate(origin)


@pytest.mark.parametrize(
    "args",
    [
        (ORIGIN, -1, ROOT),
        (ORIGIN, 1, ROOT[:31]),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("a\nb",)),
    ],
)
def test_bad_checkpoints(args: tuple[object, ...]) -> None:
    with pytest.raises(InvalidInput):
        Checkpoint(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "nope",
        f"{ORIGIN}+0000000+AQ==",
        f"{ORIGIN}+00000000+AQ==",
        f"{ORIGIN}+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
    ],
)
def test_bad_verifier_keys(key: str) -> None:
    with pytest.raises(InvalidInput):
        parse_verifier_key(key)


def test_verifier_key_with_wrong_id(signer: LogSigner) -> None:
    name, _, key = signer.verifier_key().split("+", 2)
    with pytest.raises(InvalidInput, match="does not match"):
        parse_verifier_key(f"{name}+00000000+{key}")


def test_key_file_created_private_then_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.key"
    created = load_or_create_signer(path, ORIGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(f"PRIVATE+KEY+{ORIGIN}+{created.key_id.hex()}+")
    loaded = load_or_create_signer(path, ORIGIN)
    assert loaded.private_bytes() == created.private_bytes()
    assert loaded.verifier_key() == created.verifier_key()


def test_key_file_permissions_enforced(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    load_or_create_signer(path, ORIGIN)
    os.chmod(path, 0o640)
    with pytest.raises(InvalidInput, match="chmod 600"):
        load_or_create_signer(path, ORIGIN)


def test_key_file_name_and_content_checked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    load_or_create_signer(path, ORIGIN)
    with pytest.raises(InvalidInput, match=r"not 'other\.example'"):
        load_or_create_signer(path, "other.example")
    os.chmod(path, 0o600)
    path.write_text("garbage\n")
    with pytest.raises(InvalidInput, match="PRIVATE"):
        load_or_create_signer(path, ORIGIN)
