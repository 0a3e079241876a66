"""Marked streams: a track served as 16-bit WAV with one stream's serial embedded, piece by piece.

Every listener gets a different file, so nothing per stream can be cached up front; instead the
WAV is rendered lazily. Its size and layout are known from the track's frame count alone, so a
byte range maps to frames exactly, and only the 10-s pieces a request touches are marked
(:func:`~consentune.shield.watermark.embed_span` gives the same samples as marking the whole
track). A player that seeks costs the piece it lands in; one that plays through costs the
whole track once, about 0.5 % of one core per concurrent listener.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consentune.errors import InvalidInput
from consentune.shield.lru import LruCache
from consentune.shield.serial import WatermarkKeys, seal_serial
from consentune.shield.signals import embed_xmp
from consentune.shield.watermark import HOP_S, MAX_RATE, MIN_RATE, embed_span

__all__ = ["PIECE_S", "MarkedStream", "PlainStream", "StreamMarker", "TrackPcm"]

PIECE_S = 10.0
Decoder = Callable[[], tuple[npt.NDArray[np.float32], int]]  # the track's float samples and rate (Hz)
_MARGIN_HOPS = 2  # embed_span needs 2 hops of context on each side of a piece
_SAMPLE_BYTES = 2


@dataclass(frozen=True)
class TrackPcm:
    """A decoded track kept for marking: ``samples`` int16 shaped (frames, channels) at ``rate`` Hz."""

    samples: npt.NDArray[np.int16]
    rate: int

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)

    @classmethod
    def of(cls, samples: npt.NDArray[np.floating], rate: int) -> TrackPcm:
        """16-bit PCM of float ``samples`` in [-1, 1], (frames,) or (frames, channels)."""
        shaped = samples.reshape(len(samples), -1)
        return cls(np.round(np.clip(shaped, -1.0, 1.0) * 32767).astype(np.int16), rate)


class MarkedStream:
    """One stream's WAV: ``size`` bytes, read by byte range; pieces are marked on first read and a few kept."""

    media_type = "audio/wav"

    def __init__(self, *, pcm: TrackPcm, payload: bytes, key: bytes, xmp: bytes | None, keep_pieces: int = 2) -> None:
        self._pcm = pcm
        self._payload = payload
        self._key = key
        frames, channels = pcm.samples.shape
        self._frame_bytes = channels * _SAMPLE_BYTES
        self._hop = round(pcm.rate * HOP_S)
        self._piece_frames = round(PIECE_S / HOP_S) * self._hop
        self._header = _wav_header(frames=frames, channels=channels, rate=pcm.rate, xmp=xmp)
        self.size = len(self._header) + frames * self._frame_bytes
        self._pieces: dict[int, bytes] = {}
        self._keep = keep_pieces
        self._lock = threading.Lock()

    def read(self, start: int, stop: int) -> bytes:
        """Bytes ``start:stop`` of the file (``stop`` exclusive, clipped to ``size``)."""
        if not 0 <= start <= stop:
            raise InvalidInput(f"byte span {start}:{stop} is not a range", hint="ask for start <= stop, both >= 0")
        stop = min(stop, self.size)
        head = self._header[start:stop]
        body_start, body_stop = max(start - len(self._header), 0), max(stop - len(self._header), 0)
        if body_start >= body_stop:
            return head
        piece_bytes = self._piece_frames * self._frame_bytes
        first, last = body_start // piece_bytes, (body_stop - 1) // piece_bytes
        body = b"".join(self._piece(i) for i in range(first, last + 1))
        offset = first * piece_bytes
        return head + body[body_start - offset : body_stop - offset]

    def _piece(self, index: int) -> bytes:
        with self._lock:
            cached = self._pieces.get(index)
        if cached is not None:
            return cached
        frames = len(self._pcm.samples)
        start = index * self._piece_frames
        stop = min(start + self._piece_frames, frames)
        lo = max(0, start - _MARGIN_HOPS * self._hop)
        hi = min(frames, stop + _MARGIN_HOPS * self._hop)
        window = self._pcm.samples[lo:hi].astype(np.float32) / 32767
        marked = embed_span(
            window, self._pcm.rate, self._payload, self._key, start=start - lo, stop=stop - lo, origin=lo
        )
        data = np.round(marked * 32767).astype("<i2").tobytes()
        with self._lock:
            self._pieces[index] = data
            while len(self._pieces) > self._keep:
                del self._pieces[max(self._pieces, key=lambda i: abs(i - index))]  # keep the neighbours
        return data


def _wav_header(*, frames: int, channels: int, rate: int, xmp: bytes | None) -> bytes:
    """RIFF/WAVE header of a 16-bit PCM file of ``frames`` frames, with the XMP policy chunk if given."""
    block = channels * _SAMPLE_BYTES
    data_bytes = frames * block
    fmt = (
        b"fmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + channels.to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + (rate * block).to_bytes(4, "little")
        + block.to_bytes(2, "little")
        + (8 * _SAMPLE_BYTES).to_bytes(2, "little")
    )
    skeleton = b"RIFF" + (4 + len(fmt) + 8).to_bytes(4, "little") + b"WAVE" + fmt + b"data" + (0).to_bytes(4, "little")
    header = embed_xmp(skeleton, format="wav", xmp=xmp) if xmp is not None else skeleton
    riff_size = len(header) - 8 + data_bytes
    if riff_size > 0xFFFFFFFF:
        raise InvalidInput(f"a {frames}-frame WAV is over RIFF's 4 GiB", hint="serve tracks shorter than 6 hours")
    return b"RIFF" + riff_size.to_bytes(4, "little") + header[8:-4] + data_bytes.to_bytes(4, "little")


class PlainStream:
    """The unmarked file (original plus embedded policy), for servers that turn marking off."""

    def __init__(self, data: bytes, media_type: str) -> None:
        self._data = data
        self.media_type = media_type
        self.size = len(data)

    def read(self, start: int, stop: int) -> bytes:
        return self._data[start:stop]


class StreamMarker:
    """One worker's marking state: decoded tracks (bounded by bytes) and the streams being served.

    Keys come from the shield secret, so every worker seals and marks the same serial for a stream;
    a player moving between workers gets the same bytes.
    """

    def __init__(self, *, keys: WatermarkKeys, pcm_cache_bytes: int = 512 * 2**20, streams: int = 64) -> None:
        self._keys = keys
        self._pcm: OrderedDict[str, TrackPcm] = OrderedDict()
        self._pcm_bytes = 0
        self._pcm_cache_bytes = pcm_cache_bytes
        self._streams: LruCache[str, MarkedStream] = LruCache(streams)
        self._lock = threading.Lock()

    def serial(self, *, listener_id: str, issued_at: float) -> bytes:
        """The payload of a stream issued to ``listener_id`` (account, else session) at ``issued_at``."""
        return seal_serial(listener_id=listener_id, at=issued_at, key=self._keys.serial)

    def stream(
        self,
        *,
        stream_key: str,
        track_id: str,
        payload: bytes,
        decode: Decoder,
        xmp: Callable[[], bytes | None],
    ) -> MarkedStream | None:
        """The marked WAV of one stream (``stream_key``: its play nonce); None if the track's rate cannot carry
        the mark (below 12 kHz). ``decode`` is called only when the track is not cached."""
        found = self._streams.get(stream_key)
        if found is not None:
            return found
        pcm = self._track(track_id, decode)
        if not MIN_RATE <= pcm.rate <= MAX_RATE:
            return None
        made = MarkedStream(pcm=pcm, payload=payload, key=self._keys.mark, xmp=xmp())
        self._streams.put(stream_key, made)
        return made

    def size(self, *, track_id: str, decode: Decoder, xmp: Callable[[], bytes | None]) -> int | None:
        """Bytes of every marked stream of the track (the same for all listeners); None if served unmarked."""
        pcm = self._track(track_id, decode)
        if not MIN_RATE <= pcm.rate <= MAX_RATE:
            return None
        frames, channels = pcm.samples.shape
        return len(_wav_header(frames=frames, channels=channels, rate=pcm.rate, xmp=xmp())) + pcm.nbytes

    def _track(self, track_id: str, decode: Decoder) -> TrackPcm:
        with self._lock:
            pcm = self._pcm.get(track_id)
            if pcm is not None:
                self._pcm.move_to_end(track_id)
                return pcm
        pcm = TrackPcm.of(*decode())
        with self._lock:
            if track_id not in self._pcm:
                self._pcm[track_id] = pcm
                self._pcm_bytes += pcm.nbytes
            while self._pcm_bytes > self._pcm_cache_bytes and len(self._pcm) > 1:
                _old, dropped = self._pcm.popitem(last=False)
                self._pcm_bytes -= dropped.nbytes
        return pcm
