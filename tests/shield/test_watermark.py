"""Forensic watermark: recovery after lossy coding, resampling and speed change; no false attribution."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf  # type: ignore[import-untyped,unused-ignore]
from scipy.signal import resample_poly

from consentune.cli import main
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.errors import InvalidInput
from consentune.service import open_service
from consentune.shield import watermark
from consentune.shield.serial import open_serial, seal_serial, watermark_keys
from consentune.shield.watermark import detect, embed, embed_span, segmental_snr_db, signal_to_mark_db
from consentune.types import STREAM

RATE = 44100
KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("5a17c0ffee004242")
Audio = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def song() -> Audio:
    return synthesize(SongSpec(seed=11, duration_s=34.0, style="pop"))


@pytest.fixture(scope="module")
def marked(song: Audio) -> Audio:
    return embed(song, RATE, PAYLOAD, KEY)


def _crop(x: Audio, start_s: float = 2.7, seconds: float = 30.0) -> Audio:
    """A 30-s excerpt that starts off the mark's period and hop grid."""
    return x[int(start_s * RATE) : int((start_s + seconds) * RATE)]


def _decode(data: bytes) -> tuple[Audio, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def _ffmpeg(x: Audio, *, codec: str, bitrate: str, suffix: str) -> tuple[Audio, int]:
    """Round trip through ffmpeg at an exact bit rate (soundfile cannot set one)."""
    if shutil.which("ffmpeg") is None:
        message = "ffmpeg is not installed (apt-get install ffmpeg; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory() as folder:
        source, coded = Path(folder) / "in.wav", Path(folder) / f"out{suffix}"
        source.write_bytes(encode(x, RATE, format="wav"))
        command = ["ffmpeg", "-v", "error", "-i", str(source), "-c:a", codec, "-b:a", bitrate, str(coded)]
        subprocess.run(command, check=True)
        return _decode(coded.read_bytes())


def _mp3(x: Audio) -> tuple[Audio, int]:
    return _ffmpeg(x, codec="libmp3lame", bitrate="128k", suffix=".mp3")


def _opus(x: Audio) -> tuple[Audio, int]:
    return _ffmpeg(x, codec="libopus", bitrate="64k", suffix=".opus")


def _to_48k(x: Audio) -> tuple[Audio, int]:
    return resample_poly(x, 160, 147, axis=0).astype(np.float32), 48000


def _faster(x: Audio) -> tuple[Audio, int]:
    """Played 3 % faster: 3 % fewer samples at the same rate (pitch and tempo both move)."""
    return resample_poly(x, 100, 103, axis=0).astype(np.float32), RATE


def _slower(x: Audio) -> tuple[Audio, int]:
    return resample_poly(x, 100, 97, axis=0).astype(np.float32), RATE


@pytest.mark.parametrize("transform", [_mp3, _opus, _to_48k, _faster, _slower], ids=lambda f: f.__name__)
def test_payload_survives_each_transformation(marked: Audio, transform: object) -> None:
    assert callable(transform)
    samples, rate = transform(_crop(marked))
    found = detect(samples, rate, KEY)
    assert found is not None
    assert found.payload == PAYLOAD


def test_speed_estimate_follows_the_change(marked: Audio) -> None:
    samples, rate = _faster(_crop(marked, start_s=0.0))
    found = detect(samples, rate, KEY)
    assert found is not None and found.speed == pytest.approx(1.03, abs=0.003)


def test_unmarked_audio_and_the_wrong_key_find_nothing(song: Audio, marked: Audio) -> None:
    assert detect(_crop(song), RATE, KEY) is None
    assert detect(_crop(marked), RATE, bytes(32)) is None
    other = synthesize(SongSpec(seed=12, duration_s=30.0, style="techno"))
    assert detect(other, RATE, KEY) is None


def test_mark_is_far_below_the_music(song: Audio, marked: Audio) -> None:
    overall_db, in_band_db = signal_to_mark_db(song, marked, RATE)
    assert overall_db >= 24.0  # documented in docs/shield-detection.md
    assert in_band_db >= 13.0
    assert segmental_snr_db(song, marked, RATE) >= 22.0  # quiet passages weigh as much as loud ones
    outside = np.fft.rfft((marked - song)[:, 0])
    freqs = np.fft.rfftfreq(len(song), 1 / RATE)
    low = np.sum(np.abs(outside[freqs < 500]) ** 2)
    assert low < 1e-3 * np.sum(np.abs(outside) ** 2)  # the mark stays out of the bass


def test_embedding_in_blocks_equals_one_pass(song: Audio, marked: Audio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watermark, "_BLOCK_HOPS", 10**6)  # the 34-s song is otherwise marked in two blocks
    assert np.array_equal(embed(song, RATE, PAYLOAD, KEY), marked)


SPANS = [(0, 1), (12_345, 700_001), (882 * 600, 882 * 1100), (1_400_000, 1_499_400)]


@pytest.mark.parametrize(("start", "stop"), SPANS)
def test_any_span_or_window_equals_the_whole_embedding(song: Audio, marked: Audio, start: int, stop: int) -> None:
    assert np.array_equal(embed_span(song, RATE, PAYLOAD, KEY, start=start, stop=stop), marked[start:stop])
    lo, hi = max(0, start - start % 882 - 2 * 882), min(len(song), stop + 2 * 882)  # a window of the track
    window = embed_span(song[lo:hi], RATE, PAYLOAD, KEY, start=start - lo, stop=stop - lo, origin=lo)
    assert np.array_equal(window, marked[start:stop])


def test_segmental_snr_skips_silence_and_refuses_all_silence(song: Audio, marked: Audio) -> None:
    padded, padded_marked = (np.concatenate([np.zeros((RATE, 2), np.float32), x]) for x in (song, marked))
    expected = segmental_snr_db(song, marked, RATE)
    assert segmental_snr_db(padded, padded_marked, RATE) == pytest.approx(expected, abs=0.01)
    with pytest.raises(InvalidInput, match="silent throughout"):
        segmental_snr_db(np.zeros(RATE, np.float32), np.zeros(RATE, np.float32), RATE)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(InvalidInput, match="payload is 3 bytes"):
        embed(np.zeros(RATE, dtype=np.float32), RATE, b"abc", KEY)
    with pytest.raises(InvalidInput, match=r"clip is 5\.0 s long"):
        detect(np.zeros(5 * RATE, dtype=np.float32), RATE, KEY)
    with pytest.raises(InvalidInput, match="dtype int16"):
        detect(np.zeros(20 * RATE, dtype=np.int16), RATE, KEY)


def test_serial_round_trips_and_stays_opaque() -> None:
    keys = watermark_keys(b"s" * 32)
    sealed = seal_serial(listener_id="acc_0123456789abcdef", at=1_764_676_845.0, key=keys.serial)
    serial = open_serial(sealed, key=keys.serial)
    assert serial.listener_prefix == "acc_0123456789"
    assert serial.minute_at == 1_764_676_800
    assert serial.matches("acc_0123456789abcdef")
    assert b"\x01\x23\x45" not in sealed
    assert open_serial(sealed, key=watermark_keys(b"t" * 32).serial).listener_prefix != "acc_0123456789"
    anonymous = open_serial(seal_serial(listener_id="sid_" + "ab" * 16, at=2.1e9, key=keys.serial), key=keys.serial)
    assert anonymous.listener_prefix == "sid_ababababab" and anonymous.minute_at == 2.1e9 // 60 * 60
    with pytest.raises(InvalidInput, match="not acc_<16 hex>"):
        seal_serial(listener_id="someone", at=1_764_676_845.0, key=keys.serial)
    with pytest.raises(InvalidInput, match="outside the serial's range"):
        seal_serial(listener_id="acc_0123456789abcdef", at=2.3e9, key=keys.serial)  # 2042


def test_cli_without_stream_records_lists_the_ledger_streams_of_the_minute(
    home: Path, song: Audio, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leak from before streams were recorded (or from a pruned record) is still traced through the ledger."""
    monkeypatch.setenv("CONSENTUNE_STREAM_WATERMARK", "0")  # no stream records
    original = home / "song.wav"
    original.write_bytes(encode(song, RATE, format="wav"))
    assert main(["artist", "add", "Ada"]) == 0
    assert main(["ingest", str(original), "--artist", "Ada"]) == 0
    capsys.readouterr()
    svc = open_service()
    [track] = svc.catalog.tracks()
    account_id, token = svc.listen.create_account(address="203.0.113.9", now=time.time())
    _credential, session_id, _account = svc.listen.create_session(
        account_token=token, address="203.0.113.9", user_agent="t", now=time.time()
    )
    svc.listen.start_play(session_id=session_id, track=track, now=time.time(), account_id=account_id)
    [issued] = svc.ledger.track_entries(track=track.id, purpose=STREAM)
    issued_at = datetime.strptime(issued.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    keys = watermark_keys(svc.settings.shield_secret_path.read_bytes())
    payload = seal_serial(listener_id=account_id, at=issued_at, key=keys.serial)
    leak = home / "leak.mp3"
    leak.write_bytes(encode(_crop(embed(song, RATE, payload, keys.mark)), RATE, format="mp3"))
    assert main(["watermark", "detect", str(leak), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert account_id.startswith(report["listener_prefix"])
    assert [e["ledger"][0]["sequence"] for e in report["streams"]] == [issued.sequence]
    junk = home / "junk.mp3"
    junk.write_bytes(b"not audio")
    assert main(["watermark", "detect", str(junk)]) == 2
    assert "hint:" in capsys.readouterr().err
    unmarked = home / "unmarked.mp3"
    unmarked.write_bytes(encode(_crop(song), RATE, format="mp3"))
    assert main(["watermark", "detect", str(unmarked)]) == 3
    assert "no watermark found" in capsys.readouterr().err
    svc.close()
