"""XMP packets embed where the format has a standard place, the audio still decodes, and a reader finds them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.demo import SongSpec, encode, synthesize
from consentune.errors import InvalidInput
from consentune.gate.decode import probe_and_validate
from consentune.shield import TrackPolicy, embed_xmp, xmp_packet
from consentune.shield.signals import has_xmp_carriage

SR = 44100
DC = "{http://purl.org/dc/elements/1.1/}"
PLUS = "{http://ns.useplus.org/ldf/xmp/1.0/}"
TRACK = TrackPolicy("t-1", {"train-ai": True})


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return synthesize(SongSpec(seed=3, duration_s=1.0, sample_rate=SR))


@pytest.fixture(scope="module")
def encoded(song: np.ndarray) -> dict[str, bytes]:
    return {fmt: encode(song, SR, format=fmt) for fmt in ("wav", "mp3", "flac", "ogg-vorbis", "opus")}


# --- independent readers ---------------------------------------------------------


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunks.append((data[pos : pos + 4], data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + size % 2
    assert pos == len(data)
    return chunks


def syncsafe(raw: bytes) -> int:
    return (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]


def id3_frames(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(major version, [(frame id, frame body)]) of the ID3v2 tag at the start of an MP3."""
    assert data[:3] == b"ID3"
    major, size = data[3], syncsafe(data[6:10])
    assert all(byte < 0x80 for byte in data[6:10])
    body, frames, pos = data[10 : 10 + size], [], 0
    while pos + 10 <= len(body) and body[pos : pos + 4].isalnum():
        raw = body[pos + 4 : pos + 8]
        length = syncsafe(raw) if major == 4 else int.from_bytes(raw, "big")
        frames.append((body[pos : pos + 4], body[pos + 10 : pos + 10 + length]))
        pos += 10 + length
    return major, frames


def xmp_in_mp3(data: bytes) -> list[bytes]:
    return [body[4:] for fid, body in id3_frames(data)[1] if fid == b"PRIV" and body.startswith(b"XMP\0")]


def data_mining(packet: bytes) -> str | None:
    return ET.fromstring(packet).findtext(f".//{PLUS}DataMining")


# --- WAV -------------------------------------------------------------------------------


def test_wav_gets_one_pmx_chunk_and_still_decodes(encoded: dict[str, bytes]) -> None:
    first = xmp_packet(TRACK, title="One", artist="A")
    second = xmp_packet(TrackPolicy("t-1", {}), title="Two", artist="A")
    once = embed_xmp(encoded["wav"], format="wav", xmp=first)
    twice = embed_xmp(once, format="wav", xmp=second)
    for data, packet in ((once, first), (twice, second)):
        chunks = riff_chunks(data)
        assert [body for cid, body in chunks if cid == b"_PMX"] == [packet]
        assert [cid for cid, _ in chunks].index(b"_PMX") < [cid for cid, _ in chunks].index(b"data")
        info = probe_and_validate(data)
        assert info.format == "wav" and info.frames == SR
    found = dict(riff_chunks(twice))[b"_PMX"]
    assert (data_mining(found) or "").endswith("DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING")


def test_odd_sized_packet_is_padded(encoded: dict[str, bytes]) -> None:
    packet = xmp_packet(TRACK, title="x", artist="y")
    packet += b" " * (1 - len(packet) % 2)  # make it odd
    data = embed_xmp(encoded["wav"], format="wav", xmp=packet)
    assert dict(riff_chunks(data))[b"_PMX"] == packet
    probe_and_validate(data)


def test_not_a_wav_is_rejected(encoded: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInput, match="RIFF"):
        embed_xmp(encoded["mp3"], format="wav", xmp=b"<x/>")


# --- MP3 -------------------------------------------------------------------------------


def test_mp3_gets_a_priv_frame_and_still_decodes(encoded: dict[str, bytes]) -> None:
    packet = xmp_packet(TRACK, title="Song", artist="Artist")
    data = embed_xmp(encoded["mp3"], format="mp3", xmp=packet)
    assert xmp_in_mp3(data) == [packet]
    assert probe_and_validate(data).format == "mp3"
    again = embed_xmp(data, format="mp3", xmp=b"<x:xmpmeta/>")
    assert xmp_in_mp3(again) == [b"<x:xmpmeta/>"]
    probe_and_validate(again)


def _v23_tag(frames: list[tuple[bytes, bytes]], padding: int) -> bytes:
    body = b"".join(fid + len(data).to_bytes(4, "big") + b"\0\0" + data for fid, data in frames) + bytes(padding)
    size = len(body)
    return b"ID3\x03\x00\x00" + bytes((size >> s) & 0x7F for s in (21, 14, 7, 0)) + body


def test_existing_id3v23_tag_is_extended(encoded: dict[str, bytes]) -> None:
    title = (b"TIT2", b"\x00Old title")
    original = _v23_tag([title, (b"PRIV", b"XMP\0<old/>")], padding=64) + _strip_id3(encoded["mp3"])
    data = embed_xmp(original, format="mp3", xmp=b"<new/>")
    major, frames = id3_frames(data)
    assert major == 3
    assert title in frames and xmp_in_mp3(data) == [b"<new/>"]
    probe_and_validate(data)


def test_unsynchronised_tag_is_refused(encoded: dict[str, bytes]) -> None:
    tag = bytearray(_v23_tag([(b"TIT2", b"\x00t")], padding=0))
    tag[5] = 0x80
    with pytest.raises(InvalidInput, match="unsynchronisation"):
        embed_xmp(bytes(tag) + _strip_id3(encoded["mp3"]), format="mp3", xmp=b"<x/>")


def _strip_id3(data: bytes) -> bytes:
    return data[10 + syncsafe(data[6:10]) :] if data[:3] == b"ID3" else data


# --- formats without a carriage ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["flac", "ogg-vorbis", "opus"])
def test_formats_without_standard_carriage_are_unchanged(encoded: dict[str, bytes], fmt: str) -> None:
    assert not has_xmp_carriage(fmt)
    assert embed_xmp(encoded[fmt], format=fmt, xmp=b"<x/>") == encoded[fmt]


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="aiff"):
        embed_xmp(b"", format="aiff", xmp=b"")


# --- the packet -------------------------------------------------------------------------


def _surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"


@settings(max_examples=50, deadline=None)
@given(title=st.text(max_size=40), artist=st.text(max_size=40))
def test_packet_is_well_formed_xml_for_any_text(title: str, artist: str) -> None:
    packet = xmp_packet(TRACK, title=title, artist=artist, policy_url="https://music.example/ai?a=1&b=2")
    assert packet.startswith(b"<?xpacket begin=") and packet.rstrip().endswith(b'<?xpacket end="r"?>')
    root = ET.fromstring(packet)
    assert root.findtext(f".//{DC}identifier") == "t-1"
    kept = "".join(c for c in title if c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff" and not _surrogate(c)))
    assert (root.findtext(f".//{DC}title/*/*") or "") == kept
