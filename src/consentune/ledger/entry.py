"""Ledger entries and the canonical JSON that makes their hashes reproducible.

Anyone re-hashing an entry must get the same bytes, so the encoding has exactly
one form: sorted keys, no insignificant whitespace, UTF-8, no floats, and
integers limited to the range every JSON parser represents exactly.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from consentune.errors import InvalidInput
from consentune.ledger.merkle import leaf_hash

MAX_SAFE_INT = 2**53 - 1
DECISIONS = ("allow", "deny", "record")

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _check_json_value(value: object, where: str) -> None:
    """Reject anything whose JSON form is ambiguous or not portable."""
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise InvalidInput(
                f"integer {value} at {where} exceeds ±(2**53 - 1)",
                hint="encode large numbers as strings",
            )
        return
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _check_json_value(item, f"{where}[{position}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"object key {key!r} at {where} is not a string",
                    hint="canonical JSON only allows string keys",
                )
            _check_json_value(item, f"{where}.{key}")
        return
    raise InvalidInput(
        f"value of type {type(value).__name__} at {where} has no canonical JSON form",
        hint="use str, int, bool, None, list or dict (floats are not allowed)",
    )


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` as canonical JSON bytes (sorted keys, compact, UTF-8).

    Raises
    ------
    InvalidInput
        For floats, non-string keys, unsafe integers, other types, or strings
        that are not valid Unicode (lone surrogates).
    """
    _check_json_value(obj, "$")
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            "string contains a lone surrogate and cannot be encoded as UTF-8",
            hint="pass valid Unicode text",
        ) from exc


def utc_timestamp(dt: datetime | None = None) -> str:
    """Format ``dt`` (default: now) as RFC 3339 UTC with microseconds and ``Z``."""
    moment = datetime.now(UTC) if dt is None else dt
    if moment.tzinfo is None:
        raise InvalidInput(
            f"datetime {moment.isoformat()} has no time zone",
            hint="pass an aware datetime, e.g. datetime.now(UTC)",
        )
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, hint="ledger entries must follow docs/ledger.md exactly")


def _check_time(value: str) -> None:
    if not _TIME_RE.fullmatch(value):
        raise _invalid(f"time {value!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError as exc:
        raise _invalid(f"time {value!r} is not a real calendar time") from exc


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "sequence": (int,),
    "time": (str,),
    "actor": (str,),
    "action": (str,),
    "purpose": (str, type(None)),
    "track": (str, type(None)),
    "decision": (str,),
    "reason": (str,),
    "terms_version": (int, type(None)),
}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One logged event; its canonical JSON is leaf number ``sequence`` of the tree."""

    sequence: int
    time: str
    actor: str
    action: str
    purpose: str | None
    track: str | None
    decision: str
    reason: str
    terms_version: int | None

    def __post_init__(self) -> None:
        for name, allowed in _FIELD_TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise _invalid(f"field {name} has type {type(value).__name__}")
        if not 0 <= self.sequence <= MAX_SAFE_INT:
            raise _invalid(f"sequence {self.sequence} is out of range")
        if self.terms_version is not None and not 0 <= self.terms_version <= MAX_SAFE_INT:
            raise _invalid(f"terms_version {self.terms_version} is out of range")
        if self.decision not in DECISIONS:
            raise _invalid(f"decision {self.decision!r} is not one of {DECISIONS}")
        if not self.action or not self.actor:
            raise _invalid("actor and action must not be empty")
        _check_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object form (all fields, ``None`` kept as null)."""
        return asdict(self)

    def to_bytes(self) -> bytes:
        """Return the canonical JSON bytes that are hashed into the tree."""
        return canonical_json(self.to_dict())

    def leaf(self) -> bytes:
        """Return the RFC 9162 leaf hash of :meth:`to_bytes`."""
        return leaf_hash(self.to_bytes())

    @classmethod
    def from_dict(cls, obj: Mapping[str, object]) -> LedgerEntry:
        """Build an entry from its JSON object, requiring exactly the known fields."""
        if not isinstance(obj, Mapping):
            raise _invalid(f"entry must be a JSON object, got {type(obj).__name__}")
        expected = {field.name for field in fields(cls)}
        if set(obj) != expected:
            raise _invalid(f"entry fields {sorted(obj)} differ from {sorted(expected)}")
        return cls(**obj)  # type: ignore[arg-type]  # __post_init__ checks every type

    @classmethod
    def from_bytes(cls, data: bytes) -> LedgerEntry:
        """Parse canonical entry bytes; anything but the exact canonical form is rejected."""
        return cls.from_dict(parse_canonical_json(data))


def _reject_constant(name: str) -> object:
    raise _invalid(f"JSON constant {name} is not allowed")


def parse_canonical_json(data: bytes) -> Any:
    """Decode JSON that must already be in canonical form, byte for byte.

    Comparing against a re-encoding rejects every alternative spelling at once:
    whitespace, key order, duplicate keys, escapes, floats and NaN.
    """
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _invalid(f"not valid UTF-8 JSON: {exc}") from exc
    if canonical_json(obj) != data:
        raise _invalid("JSON bytes are not in canonical form")
    return obj


__all__ = [
    "DECISIONS",
    "MAX_SAFE_INT",
    "LedgerEntry",
    "canonical_json",
    "parse_canonical_json",
    "utc_timestamp",
]


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_quote = json.encoder.encode_basestring  # the string encoder json.dumps(ensure_ascii=False) itself uses


def fast_entry_bytes(
    sequence: int,
    time: str,
    actor: str,
    action: str,
    purpose: str | None,
    track: str | None,
    decision: str,
    reason: str,
    terms_version: int | None,
) -> bytes:
    """The same bytes as ``LedgerEntry(...).to_bytes()``, many times faster.

    The integrator writes tens of thousands of entries per second, so it skips
    the generic canonical-JSON walk: the key order below *is* the sorted order,
    strings are escaped by the same function ``json.dumps(ensure_ascii=False)``
    uses, and the checks are the ones ``LedgerEntry`` makes, except the
    calendar check of ``time``, which the caller makes once per batch.
    """
    if type(actor) is not str or type(action) is not str or type(decision) is not str or type(reason) is not str:
        raise _invalid(f"field values {actor!r}, {action!r}, {decision!r}, {reason!r} must be strings")
    if (purpose is not None and type(purpose) is not str) or (track is not None and type(track) is not str):
        raise _invalid(f"field values {purpose!r}, {track!r} must be strings or null")
    if type(sequence) is not int or not 0 <= sequence <= MAX_SAFE_INT:
        raise _invalid(f"number {sequence!r} must be an integer in [0, 2**53 - 1]")
    if terms_version is not None and (type(terms_version) is not int or not 0 <= terms_version <= MAX_SAFE_INT):
        raise _invalid(f"number {terms_version!r} must be an integer in [0, 2**53 - 1]")
    if decision not in DECISIONS or not actor or not action:
        raise _invalid(f"decision {decision!r} / actor / action are not valid")
    text = (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},"decision":{_quote(decision)},'
        f'"purpose":{"null" if purpose is None else _quote(purpose)},"reason":{_quote(reason)},'
        f'"sequence":{sequence},"terms_version":{"null" if terms_version is None else terms_version},'
        f'"time":{_quote(time)},"track":{"null" if track is None else _quote(track)}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _invalid("string contains a lone surrogate") from exc


def check_timestamp(value: str) -> None:
    """Raise InvalidInput unless ``value`` is a real ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` time."""
    _check_time(value)


@functools.lru_cache(maxsize=4096)  # the entries of one batch share their time
def _time_ok(value: str) -> bool:
    """What ``strptime`` accepts (hours 00-23, minutes and seconds 00-59), with the calendar date cached:
    entries of one log share few dates but almost never a time, and ``strptime`` costs microseconds."""
    return (
        _TIME_RE.fullmatch(value) is not None
        and _date_ok(value[:10])
        and value[11:13] <= "23"
        and value[14:16] <= "59"
        and value[17:19] <= "59"
    )


@functools.lru_cache(maxsize=4096)
def _date_ok(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def valid_timestamp(value: str) -> bool:
    """Whether ``value`` is a real ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` time (cached: a batch shares one)."""
    return _time_ok(value)


_SORTED_FIELDS = tuple(sorted(_FIELD_TYPES))
_decode = json.JSONDecoder().decode
_FIELD_SET = frozenset(_FIELD_TYPES)


def valid_entry_fields(obj: Any) -> bool:
    """Whether a parsed JSON value has exactly the entry fields, with the §2.2 types and values.

    Plain type checks (``type(x) is int`` also refuses ``true``); the caller
    checks canonical encoding separately.
    """
    if type(obj) is not dict or obj.keys() != _FIELD_SET:
        return False
    sequence, version, time = obj["sequence"], obj["terms_version"], obj["time"]
    return (
        type(sequence) is int
        and 0 <= sequence <= MAX_SAFE_INT
        and (version is None or (type(version) is int and 0 <= version <= MAX_SAFE_INT))
        and type(obj["actor"]) is str
        and type(obj["action"]) is str
        and bool(obj["actor"])
        and bool(obj["action"])
        and type(obj["reason"]) is str
        and obj["decision"] in DECISIONS
        and (obj["purpose"] is None or type(obj["purpose"]) is str)
        and (obj["track"] is None or type(obj["track"]) is str)
        and type(time) is str
        and _time_ok(time)
    )


def canonical_sequence(data: bytes) -> int:
    """Check that ``data`` is exactly a canonical entry and return its sequence number.

    The audit path: same acceptance as :meth:`LedgerEntry.from_bytes`, several
    times faster: field checks are plain type tests, key order is checked
    directly, and the C encoder re-encodes the parsed object for the byte comparison.
    """
    try:
        obj = _decode(data.decode("utf-8"))  # skips json.loads' encoding sniffing: entries are UTF-8
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid(f"entry is not JSON: {exc}") from None
    if not valid_entry_fields(obj) or tuple(obj) != _SORTED_FIELDS:
        raise _invalid("entry does not have exactly the ledger entry fields, in order, with their types")
    try:
        rebuilt = _dumps(obj).encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("string contains a lone surrogate") from None
    if rebuilt != data:
        raise _invalid("entry bytes are not in canonical form")
    sequence: int = obj["sequence"]
    return sequence
