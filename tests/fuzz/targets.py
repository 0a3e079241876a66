"""atheris fuzz targets for the decoders and parsers; run one as a script (see test_fuzz.py).

    python tests/fuzz/targets.py TARGET SEED_DIR -runs=2000

Each target feeds libFuzzer's bytes to one entry point and lets only our typed
errors through: anything else is a crash, which libFuzzer reports (with the
input saved under ``-artifact_prefix``) and exits non-zero.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["consentune"]):
    from consentune.errors import AudioRejected, ConsentuneError, InvalidInput, VerificationFailed
    from consentune.gate.decode import AudioLimits, decode, probe_and_validate
    from consentune.ledger import verify_checkpoint, verify_receipt
    from consentune.plays.parse import parse_csv, parse_records, read_play_file

_LIMITS = AudioLimits(max_duration_s=20.0)
_KEY_FILE = "verifier.key"  # in the seed directory: the key the seed receipts and checkpoints verify with


def audio(data: bytes) -> None:
    """WAV/FLAC/Ogg/MP3 headers and frames through the gate's probe and stream decoder."""
    with contextlib.suppress(AudioRejected):
        probe_and_validate(data, limits=_LIMITS)
        decode(data, mono=True, target_sr=8000, limits=_LIMITS)


def plays_csv(data: bytes) -> None:
    """A CSV play file: bad rows become numbered errors, nothing raises."""
    parse_csv(data.decode("utf-8", "replace"))


def plays_json(data: bytes) -> None:
    """A JSON batch of play rows (as the API receives them): bad rows become errors, nothing raises."""
    try:
        rows = json.loads(data)
    except (ValueError, RecursionError):
        return
    if isinstance(rows, list):
        parse_records((i, row) for i, row in enumerate(rows) if isinstance(row, dict))


def plays_parquet(data: bytes) -> None:
    """A Parquet play file: unreadable files are InvalidInput, bad rows numbered errors."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plays.parquet"
        path.write_bytes(data)
        with contextlib.suppress(InvalidInput):
            read_play_file(path)


@functools.cache
def _verifier_key() -> str:
    seeds = next((Path(a) for a in sys.argv[2:] if not a.startswith("-")), None)
    return (seeds / _KEY_FILE).read_text().strip() if seeds and (seeds / _KEY_FILE).exists() else "x+00000000+AAAA"


def receipt(data: bytes) -> None:
    """A receipt file: anything wrong is VerificationFailed."""
    with contextlib.suppress(VerificationFailed):
        verify_receipt(data, verifier_key=_verifier_key())


def checkpoint(data: bytes) -> None:
    """A signed checkpoint note: anything wrong is a typed error."""
    with contextlib.suppress(ConsentuneError):
        verify_checkpoint(data.decode("utf-8", "replace"), _verifier_key())


TARGETS: dict[str, Callable[[bytes], None]] = {
    "audio": audio,
    "plays-csv": plays_csv,
    "plays-json": plays_json,
    "plays-parquet": plays_parquet,
    "receipt": receipt,
    "checkpoint": checkpoint,
}

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
