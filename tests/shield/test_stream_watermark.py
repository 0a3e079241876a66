"""Every stream is marked: a file fetched over HTTP names its account and ledger entry; reads by range agree."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf  # type: ignore[import-untyped,unused-ignore]
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.cli import main
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import open_service
from consentune.shield.serial import open_serial, watermark_keys
from consentune.shield.streammark import MarkedStream, TrackPcm
from consentune.shield.watermark import detect, embed, signal_to_mark_db
from consentune.types import STREAM

RATE = 44100
T0 = 1_800_000_000.0
KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("0123456789abcdef")
Audio = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def song() -> Audio:
    return synthesize(SongSpec(seed=21, duration_s=42.0, style="lofi"))


def _sim(now: float, **extra: str) -> dict[str, str]:
    return {"X-Consentune-Sim-Time": str(now), "User-Agent": "Mozilla/5.0 test", **extra}


def _listen(c: TestClient, track: str) -> tuple[str, bytes]:
    """Sign up, start a session, play ``track`` and fetch the whole stream once real time allows."""
    account = c.post("/v1/listen/accounts", headers=_sim(T0)).json()
    started = c.post("/v1/listen/sessions", headers=_sim(T0, Authorization=f"Bearer {account['token']}"))
    credential = started.json()["session_token"]
    url = c.post(f"/v1/listen/tracks/{track}/play", headers=_sim(T0 + 1, **{"X-Session-Token": credential}))
    streamed = c.get(url.json()["stream_url"], headers=_sim(T0 + 60, **{"X-Session-Token": credential}))
    assert streamed.status_code == 206
    assert streamed.headers["content-range"].endswith(f"/{len(streamed.content)}")
    return str(account["account_id"]), streamed.content


def test_a_file_streamed_over_http_names_its_account_and_ledger_entry(
    home: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    song: Audio,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONSENTUNE_DATABASE_URL", database_url)
    monkeypatch.setenv("CONSENTUNE_SHIELD_SIM_CLOCK", "1")
    monkeypatch.setenv("CONSENTUNE_BENCH_MODE", "1")
    svc = open_service()
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(encode(song, RATE, format="flac"), filename="s.flac", artist=ada, title="S", actor="t")
    c = TestClient(create_app(svc), client=("127.0.0.1", 40000), raise_server_exceptions=False)
    mine, served = _listen(c, track.track.id)
    theirs, other = _listen(c, track.track.id)
    samples, rate = sf.read(io.BytesIO(served), dtype="float32")
    assert rate == RATE and samples.shape == song.shape and served != other  # one file per stream
    assert svc.listen.served_size(track.track) == len(served) == len(other)  # what the shield bench sizes by
    assert signal_to_mark_db(song, samples, RATE)[0] >= 24.0  # the documented audibility bound holds as served
    leak = home / "leak.mp3"  # a 30-s excerpt, re-encoded as MP3 (libsndfile's LAME, ~128 kbit/s)
    leak.write_bytes(encode(samples[int(6.3 * RATE) : int(36.3 * RATE)], RATE, format="mp3"))
    svc.close()
    capsys.readouterr()
    assert main(["watermark", "detect", str(leak), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [stream] = report["streams"]
    assert stream["account_id"] == mine != theirs and stream["track"] == track.track.id
    svc = open_service()
    entries = svc.ledger.track_entries(track=track.track.id, purpose=STREAM)
    actor = svc.listen.ledger_actor(stream["session_id"])
    assert [e["sequence"] for e in stream["ledger"]] == [e.sequence for e in entries if e.actor == actor]
    keys = watermark_keys(svc.settings.shield_secret_path.read_bytes())
    assert open_serial(bytes.fromhex(report["serial"]), key=keys.serial).matches(mine)
    svc.close()


def test_marking_can_be_turned_off(home: Path, monkeypatch: pytest.MonkeyPatch, song: Audio) -> None:
    monkeypatch.setenv("CONSENTUNE_SHIELD_SIM_CLOCK", "1")
    monkeypatch.setenv("CONSENTUNE_BENCH_MODE", "1")
    monkeypatch.setenv("CONSENTUNE_STREAM_WATERMARK", "0")
    svc = open_service()
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    original = encode(song, RATE, format="flac")
    track = svc.catalog.ingest(original, filename="s.flac", artist=ada, title="S", actor="t")
    c = TestClient(create_app(svc), client=("127.0.0.1", 40000), raise_server_exceptions=False)
    _account, served = _listen(c, track.track.id)
    assert served == original
    svc.close()


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_range_reads_equal_the_whole_file_and_marking_in_one_pass(rate: int) -> None:
    x = synthesize(SongSpec(seed=rate, duration_s=23.0, sample_rate=rate, style="techno"))
    pcm = TrackPcm.of(x, rate)
    whole = MarkedStream(pcm=pcm, payload=PAYLOAD, key=KEY, xmp=b"<x:xmpmeta/>").read(0, 10**9)
    rng = np.random.default_rng(rate)
    cuts = np.sort(rng.integers(0, len(whole), size=9))  # ranges that start mid-sample, mid-piece, in the header
    parts = MarkedStream(pcm=pcm, payload=PAYLOAD, key=KEY, xmp=b"<x:xmpmeta/>", keep_pieces=1)
    pieces = [parts.read(int(a), int(b)) for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert b"".join(pieces) == whole and len(whole) == parts.size
    assert b"_PMX" in whole[:200]
    decoded, got_rate = sf.read(io.BytesIO(whole), dtype="float32")
    reference = embed(pcm.samples.astype(np.float32) / 32767, rate, PAYLOAD, KEY)
    assert got_rate == rate and np.abs(decoded - reference).max() <= 1.5 / 32767  # 16-bit rounding only


def test_a_seek_marks_only_where_it_lands_and_still_decodes(song: Audio) -> None:
    stream = MarkedStream(pcm=TrackPcm.of(song, RATE), payload=PAYLOAD, key=KEY, xmp=None)
    header = stream.size - len(song) * 4
    tail = stream.read(header + 10 * RATE * 4 + 2, stream.size)  # a seek to 10 s, one byte into a sample
    samples = np.frombuffer(tail[2:], dtype="<i2").reshape(-1, 2).astype(np.float32) / 32767
    found = detect(samples, RATE, KEY)
    assert found is not None and found.payload == PAYLOAD
