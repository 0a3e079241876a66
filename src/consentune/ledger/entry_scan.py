"""Check many canonical entries straight from their bytes: one regular expression per entry, no JSON parse.

A receipt page holds up to 100,000 entries; parsing each to objects, checking
its fields and re-encoding it to confirm the bytes are canonical costs several
times more than hashing it.  The pattern below accepts exactly the bytes
:func:`consentune.ledger.entry.canonical_sequence` accepts (sorted keys, no
whitespace, strings escaped the way the canonical encoder escapes them,
integers without leading zeros), given that the whole page is valid UTF-8;
range and calendar checks are made on the captured groups.
"""

from __future__ import annotations

import hashlib
import json
import re

from consentune.errors import VerificationFailed
from consentune.ledger.entry import MAX_SAFE_INT, canonical_sequence, valid_timestamp

# a canonical JSON string: no raw '"', '\' or control characters; the encoder's own escapes only
# (runs of plain characters matched by one class, so the engine does not step through a group per character)
_PLAIN = rb'[^"\\\x00-\x1f]*'
_ESCAPE = rb'\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))'
_STRING = rb'"' + _PLAIN + rb"(?:" + _ESCAPE + _PLAIN + rb')*"'
_NONEMPTY = rb'"(?!")' + _PLAIN + rb"(?:" + _ESCAPE + _PLAIN + rb')*"'
_INT = rb"(?:0|[1-9][0-9]{0,15})"
_ENTRY = re.compile(
    rb'\{"action":' + _NONEMPTY + rb',"actor":' + _NONEMPTY + rb',"decision":"(?:allow|deny|record)"'
    rb',"purpose":(null|' + _STRING + rb'),"reason":' + _STRING + rb',"sequence":(' + _INT + rb")"
    rb',"terms_version":(?:null|(' + _INT + rb')),"time":"([0-9:.TZ-]{27})","track":(null|' + _STRING + rb")\}"
)
_SEPARATOR = b'},{"action":'


def split_entries(blob: bytes) -> list[bytes]:
    """The entries of a canonical JSON array of entry objects, each as its own bytes.

    Canonical JSON escapes every ``"`` inside strings and entries hold no nested
    objects, so ``},{"action":`` occurs only between two entries.
    """
    if not (blob.startswith(b'[{"action":') and blob.endswith(b"}]")):
        raise VerificationFailed("entries are not ledger entry objects", hint="each entry starts with its action")
    parts = blob[1:-1].split(_SEPARATOR)
    if len(parts) == 1:
        return parts
    return [parts[0] + b"}", *(b'{"action":' + part + b"}" for part in parts[1:-1]), b'{"action":' + parts[-1]]


def scan_entries(entries: list[bytes], *, track: str, purpose: str | None, after: int) -> tuple[list[int], list[bytes]]:
    """(sequences, leaf hashes) of canonical entries about ``track`` (and ``purpose``), increasing after ``after``.

    Raises
    ------
    VerificationFailed
        If an entry is not a canonical ledger entry, is about another subject,
        or its sequence does not strictly increase.
    """
    want_track = _encoded(track)
    want_purpose = None if purpose is None else _encoded(purpose)
    indices: list[int] = []
    leaves: list[bytes] = []
    previous = after
    match, sha = _ENTRY.fullmatch, hashlib.sha256
    for data in entries:
        found = match(data)
        if found is None:
            raise VerificationFailed(f"entry {data[:80]!r} is not a valid ledger entry (docs/ledger.md §2.2)")
        entry_purpose, number, version, time, entry_track = found.groups()
        sequence = int(number)
        if sequence > MAX_SAFE_INT or (version is not None and int(version) > MAX_SAFE_INT):
            raise VerificationFailed(f"entry {number.decode()} has a number outside [0, 2**53 - 1]")
        if not valid_timestamp(time.decode("ascii")):
            raise VerificationFailed(f"entry {sequence} has time {time.decode('ascii')!r}, not a real UTC time")
        if entry_track != want_track or (want_purpose is not None and entry_purpose != want_purpose):
            raise VerificationFailed(f"entry {sequence} is not about the receipt's subject")
        if sequence <= previous:
            raise VerificationFailed(f"entry {sequence} follows {previous}; sequences must strictly increase")
        previous = sequence
        indices.append(sequence)
        leaves.append(sha(b"\x00" + data).digest())
    return indices, leaves


def entry_sequence(data: bytes) -> int:
    """The sequence of ``data`` if it is exactly a canonical entry (the audit's per-row check, at regex speed).

    Raises
    ------
    InvalidInput
        As :func:`~consentune.ledger.entry.canonical_sequence` does, with its message.
    """
    found = _ENTRY.fullmatch(data)
    if found is not None and _utf8(data):
        _purpose, number, version, time, _track = found.groups()
        sequence = int(number)
        in_range = sequence <= MAX_SAFE_INT and (version is None or int(version) <= MAX_SAFE_INT)
        if in_range and valid_timestamp(time.decode("ascii")):
            return sequence
    return canonical_sequence(data)  # refuses it and says why


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _encoded(value: str) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise VerificationFailed("the subject holds a lone surrogate") from None


__all__ = ["entry_sequence", "scan_entries", "split_entries"]
