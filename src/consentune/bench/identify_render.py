"""Query rendering for ``consentune bench identify``: excerpts, degradations, codecs (ffmpeg, sox).

Follows the reference query protocol: excerpts are mono at 22.05 kHz; every
condition is rendered from the same excerpt; each (length, excerpt,
condition) has its own seeded generator so results do not depend on order.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from consentune.errors import InvalidInput

SOURCE_SR = 22_050  # Hz, excerpts as in the reference protocol
CONDITIONS = (
    "clean",
    "mp3_32k",
    "opus_16k",
    "white_snr10",
    "pink_snr10",
    "white_snr0",
    "pink_snr0",
    "speed_p5",
    "speed_m5",
    "tempo_p5",
    "pitch_p1st",
    "pitch_m1st",
)
_SPEED = {"speed_p5": (20, 21, 1.05), "speed_m5": (20, 19, 0.95)}  # resample up/down, source used per second
_SILENT_DBFS = -40.0


@dataclass(frozen=True, slots=True)
class ManifestTrack:
    path: Path
    package: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class Excerpt:
    """Source audio (int16 at SOURCE_SR) with 5 % extra for speed/tempo conditions, and its truth."""

    track: int  # index into the manifest rows, or -1
    offset_s: float
    length_s: float
    audio: npt.NDArray[np.int16]
    source: Path


def manifest_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a TSV manifest in file order; a typed error if it cannot be read or has no ``path`` column."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {path}: {exc.strerror}", hint="pass --manifest PATH") from None
    if not rows or "path" not in rows[0]:
        raise InvalidInput(f"manifest {path} has no 'path' column", hint="write a TSV with a header row and 'path'")
    return rows


def read_manifest(path: Path, *, group: str | None) -> list[ManifestTrack]:
    """Rows of a TSV manifest with at least ``path`` (and optionally ``group``, ``package``, ``duration_s``)."""
    rows = manifest_rows(path)
    if group is not None and "group" in rows[0]:
        rows = [r for r in rows if r["group"] == group]
    tracks = [
        ManifestTrack(Path(r["path"]), r.get("package") or Path(r["path"]).parent.name, float(r.get("duration_s") or 0))
        for r in rows
    ]
    return sorted(tracks, key=lambda t: str(t.path))


def check_tools() -> None:
    """ffmpeg (with libmp3lame and libopus) and sox must be installed."""
    missing = [tool for tool in ("ffmpeg", "sox") if shutil.which(tool) is None]
    if missing:
        raise InvalidInput(
            f"the identify bench needs {' and '.join(missing)} on PATH",
            hint="install them, e.g. `apt-get install ffmpeg sox`",
        )
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    for codec in ("libmp3lame", "libopus"):
        if codec not in encoders:
            raise InvalidInput(f"ffmpeg lacks the {codec} encoder", hint="install an ffmpeg built with it")


def decode_file(path: Path) -> npt.NDArray[np.float32]:
    """Mono float32 at SOURCE_SR via ffmpeg (the bench's own files, not catalogue content)."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-ac", "1", "-ar", str(SOURCE_SR), "-f", "f32le", "-"]
    done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0 or not done.stdout:
        raise InvalidInput(f"ffmpeg cannot decode {path}: {done.stderr[-300:]!r}", hint="check the manifest entry")
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


def draw_excerpts(
    tracks: Sequence[ManifestTrack], indices: Sequence[int], *, n: int, length_s: float, rng: np.random.Generator
) -> list[tuple[int, float]]:
    """``n`` (track, offset) pairs drawn uniformly over tracks then offsets (silence is re-drawn on decode)."""
    out: list[tuple[int, float]] = []
    need = length_s * 1.10 + 1.0
    usable = [i for i in indices if tracks[i].duration_s > need]
    if not usable:
        raise InvalidInput(f"no track is longer than {need:.0f} s", hint="use a manifest of full-length tracks")
    while len(out) < n:
        i = usable[int(rng.integers(len(usable)))]
        out.append((i, float(rng.uniform(0, tracks[i].duration_s - need))))
    return out


def cut(
    audio: npt.NDArray[np.float32], offset_s: float, length_s: float, rng: np.random.Generator
) -> tuple[float, npt.NDArray[np.int16]]:
    """The excerpt at ``offset_s`` (plus 5 %), moved to a random non-silent spot if that one is silent."""
    span = int(length_s * 1.05 * SOURCE_SR) + 1
    start = int(offset_s * SOURCE_SR)
    for _ in range(50):
        start = min(start, max(0, audio.shape[0] - span))
        seg = audio[start : start + int(length_s * SOURCE_SR)]
        if 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-12) >= _SILENT_DBFS:
            break
        start = int(rng.integers(0, max(1, audio.shape[0] - span)))
    return start / SOURCE_SR, _int16(audio[start : start + span])


def render(condition: str, excerpt: Excerpt, rng: np.random.Generator) -> bytes:
    """Bytes of one degraded query: WAV, MP3 or Ogg Opus."""
    source = excerpt.audio.astype(np.float32) / 32767.0
    n = int(excerpt.length_s * SOURCE_SR)
    seg = source[:n]
    if condition in ("clean", "negative"):
        return wav_bytes(seg)
    if condition.startswith(("white_", "pink_")):
        kind, snr = condition.split("_snr")
        return wav_bytes(_add_noise(seg, kind, float(snr), rng))
    if condition == "mp3_32k":
        return _run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-i",
                "{in}",
                "-ac",
                "1",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "32k",
                "{out}",
            ],
            seg,
            "mp3",
        )
    if condition == "opus_16k":
        return _run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", "{in}", "-ac", "1", "-c:a", "libopus", "-b:a", "16k", "{out}"],
            seg,
            "opus",
        )
    if condition in _SPEED:
        up, down, factor = _SPEED[condition]
        return wav_bytes(np.asarray(resample_poly(source[: round(n * factor)], up, down), dtype=np.float32))
    if condition == "tempo_p5":
        return _run(["sox", "{in}", "{out}", "tempo", "-m", "1.05"], source[: round(n * 1.05)], "wav")
    if condition in ("pitch_p1st", "pitch_m1st"):
        cents = "100" if condition == "pitch_p1st" else "-100"
        return _run(["sox", "{in}", "{out}", "pitch", cents], seg, "wav")
    raise InvalidInput(f"unknown condition {condition!r}", hint=f"use one of {CONDITIONS}")


def wav_bytes(samples: npt.NDArray[np.float32], rate: int = SOURCE_SR) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(_int16(samples).tobytes())
    return buffer.getvalue()


def _int16(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    scaled = samples * (0.999 / peak) if peak > 0.999 else samples
    return np.asarray(np.round(scaled * 32767), dtype=np.int16)


def _run(cmd: list[str], samples: npt.NDArray[np.float32], ext: str) -> bytes:
    """Run ffmpeg/sox between files ({in}, {out}): piped output would leave WAV/MP3 headers unfinished."""
    with tempfile.TemporaryDirectory(prefix="consentune-render-") as tmp:
        source, target = Path(tmp) / "in.wav", Path(tmp) / f"out.{ext}"
        source.write_bytes(wav_bytes(samples))
        args = [str(source) if a == "{in}" else str(target) if a == "{out}" else a for a in cmd]
        done = subprocess.run(args, capture_output=True)
        if done.returncode != 0:
            raise InvalidInput(f"{cmd[0]} failed: {done.stderr[-300:]!r}", hint=f"check that {cmd[0]} works")
        return target.read_bytes()


def _add_noise(
    x: npt.NDArray[np.float32], kind: str, snr_db: float, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    noise = np.asarray(rng.standard_normal(size=(x.shape[0],)), dtype=np.float64)
    if kind == "pink":
        spec = np.fft.rfft(noise)
        f = np.arange(spec.shape[0], dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), x.shape[0])
    power = float(np.mean(x.astype(np.float64) ** 2))
    noise = noise * np.sqrt(power / (float(np.mean(noise**2)) * 10 ** (snr_db / 10.0)))
    return np.asarray(x + noise, dtype=np.float32)


__all__ = [
    "CONDITIONS",
    "SOURCE_SR",
    "Excerpt",
    "ManifestTrack",
    "check_tools",
    "cut",
    "decode_file",
    "draw_excerpts",
    "read_manifest",
    "render",
    "wav_bytes",
]
