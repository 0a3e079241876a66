"""A detector subject as a compact msgpack blob, so workers can share it through :mod:`consentune.shield.cells`.

msgpack, not pickle: a cell store another process can write must never be
able to run code here; and not JSON, which costs ~6x more per event.  The
blob is a list of sections behind a format number; plain slots go in
``_Subject.__slots__`` order, so a slot added to the detector is carried
along (and the round-trip test checks every slot).
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any

import msgpack

from consentune.errors import StorageError
from consentune.shield.detect import Signal, _Decay, _Hours, _Play, _Subject

FORMAT = 2
_DECAYS = ("impossible", "new_tracks", "no_progress", "plays", "realtime", "repeats", "young_accounts")
_SPECIAL = frozenset({*_DECAYS, "accounts", "recent", "lockdown_sources", "block_signals", "hours", "sessions",
                      "current"})  # fmt: skip
_PLAIN = tuple(name for name in _Subject.__slots__ if name not in _SPECIAL)
_PLAY_SLOTS = tuple(_Play.__slots__)
_plain = operator.attrgetter(*_PLAIN)
_decays = operator.attrgetter(*_DECAYS)
_play_fields = operator.attrgetter(*_PLAY_SLOTS)


def encode_subject(s: _Subject) -> bytes:
    """One subject as msgpack (floats as doubles, so exactly; infinities included)."""
    h = s.hours
    out = (
        FORMAT,
        _plain(s),
        [(d.v, d.t) for d in _decays(s)],
        list(s.accounts),
        list(s.recent),
        sorted(s.lockdown_sources),
        [(g.name, g.subject, g.value, g.threshold, g.explanation) for g in s.block_signals],
        (h.hour, h.audio, h.plays),
        [(track, _play_fields(play)) for track, play in s.sessions.items()],
        _current_out(s),
    )
    packed: bytes = msgpack.packb(out, use_bin_type=True)
    return packed


def decode_subject(data: bytes) -> _Subject:
    """The subject :func:`encode_subject` wrote; :class:`StorageError` for anything else."""
    try:
        raw = msgpack.unpackb(data, raw=False)
        if not isinstance(raw, list) or len(raw) != 10 or raw[0] != FORMAT:
            raise ValueError(f"format {raw[0] if isinstance(raw, list) and raw else raw!r}")
        return _subject_in(raw)
    except (ValueError, KeyError, TypeError, IndexError, msgpack.UnpackException) as exc:
        raise StorageError(
            f"a shared shield cell is unreadable ({type(exc).__name__}: {exc})",
            hint="another Consentune version may share this Redis prefix; give each version its own prefix",
        ) from None


def _subject_in(raw: list[Any]) -> _Subject:
    _, plain, decays, accounts, recent, sources, signals, hours, sessions, current = raw
    s = _Subject.__new__(_Subject)
    for name, value in zip(_PLAIN, plain, strict=True):
        setattr(s, name, value)
    for name, (v, t) in zip(_DECAYS, decays, strict=True):
        decay = _Decay.__new__(_Decay)
        decay.v, decay.t = v, t
        setattr(s, name, decay)
    s.accounts, s.recent = OrderedDict.fromkeys(accounts), OrderedDict.fromkeys(recent)
    s.lockdown_sources = set(sources)
    s.block_signals = tuple(Signal(*g) for g in signals)
    s.hours = _Hours.__new__(_Hours)
    s.hours.hour, s.hours.audio, s.hours.plays = hours
    s.sessions = OrderedDict((track, _play_in(play)) for track, play in sessions)
    if isinstance(current, str):  # the latest play is also in ``sessions``: the same object, as in memory
        s.current = s.sessions[current]
    else:
        s.current = None if current is None else _play_in(current)
    return s


def _current_out(s: _Subject) -> str | list[Any] | None:
    if s.current is None:
        return None
    for track, play in s.sessions.items():
        if play is s.current:
            return track
    return list(_play_fields(s.current))


def _play_in(values: list[Any]) -> _Play:
    play = _Play.__new__(_Play)
    for name, value in zip(_PLAY_SLOTS, values, strict=True):
        setattr(play, name, value)
    return play


__all__ = ["decode_subject", "encode_subject"]
