"""Parse play events from CSV rows, Parquet rows or JSON objects; bad rows become numbered errors.

Columns (CSV header names, JSON keys): ``user_id``, ``track_id``, ``played_at``
(ISO 8601 with a time zone, or Unix seconds), ``ms_played``; optional ``ip``,
``device_id``, ``user_agent``, ``country`` (ISO 3166 alpha-2),
``account_created_at`` (same formats as ``played_at``).
"""

from __future__ import annotations

import csv
import functools
import io
import ipaddress
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from consentune.errors import InvalidInput
from consentune.ports import PlayRow
from consentune.types import PlayEvent, TrackId

REQUIRED = ("user_id", "track_id", "played_at", "ms_played")
OPTIONAL = ("ip", "device_id", "user_agent", "country", "account_created_at")
MAX_MS_PLAYED = 24 * 3600 * 1000
COLUMNS = (*REQUIRED, *OPTIONAL)
CHUNK_ROWS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x1f]")


class RowProblem(ValueError):
    """One field of one row is wrong; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1-based line in the file (header is line 1), or index in a JSON batch
    message: str


@dataclass
class Parsed:
    events: list[PlayEvent] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # where each event came from
    errors: list[RowError] = field(default_factory=list)


@dataclass
class RowChunk:
    """One bounded chunk of a play file: validated rows, their line numbers, and the rejected lines."""

    rows: list[PlayRow] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def parse_csv(text: str, *, first_line: int = 2) -> Parsed:
    """Parse CSV text with a header row; rows are numbered as lines of the file.

    A row the CSV reader itself refuses (a field over ``csv.field_size_limit()``,
    a NUL byte) becomes a numbered error like any other bad row.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))  # newline="": quoted fields may hold line breaks
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        return Parsed(errors=[RowError(1, f"header row is not valid CSV: {exc}")])
    problem = header_problem(header)
    if problem is not None:
        return Parsed(errors=[RowError(1, problem)])
    parsed = Parsed()
    line = first_line
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return parsed
        except csv.Error as exc:
            parsed.errors.append(RowError(line, f"row is not valid CSV: {exc}"))
        else:
            _parse_into(parsed, line, row)
        line += 1


def parse_records(rows: Iterable[tuple[int, Mapping[str, object]]]) -> Parsed:
    parsed = Parsed()
    for line, row in rows:
        _parse_into(parsed, line, row)
    return parsed


def _parse_into(parsed: Parsed, line: int, row: Mapping[str, object]) -> None:
    try:
        parsed.events.append(parse_row(row))
        parsed.lines.append(line)
    except RowProblem as exc:
        parsed.errors.append(RowError(line, str(exc)))


def parse_row(row: Mapping[str, object]) -> PlayEvent:
    return PlayEvent(
        user_id=_text(row, "user_id", limit=64, required=True) or "",
        track_id=TrackId(_text(row, "track_id", limit=32, required=True) or ""),
        played_at=_time(row.get("played_at")),
        ms_played=_ms(row.get("ms_played")),
        ip=_ip(row.get("ip")),
        device_id=_text(row, "device_id", limit=128),
        user_agent=_text(row, "user_agent", limit=512),
        country=_country(row.get("country")),
        account_created_at=_optional_time(row, "account_created_at"),
    )


def play_row(values: Sequence[object]) -> PlayRow:
    """Validate one play given in :data:`COLUMNS` order (as text or typed values) into a :data:`PlayRow`.

    The same checks as :func:`parse_row`, without building a :class:`PlayEvent`: this is the bulk import path.
    """
    user, track, played, ms, ip, device, agent, country, account = values
    account_us = None if _blank(account) else epoch_micros(_time(account, "account_created_at"))
    return (
        _field(user, "user_id", 64, required=True) or "",
        _field(track, "track_id", 32, required=True) or "",
        epoch_micros(_time(played)),
        _ms(ms),
        _ip(ip),
        _field(device, "device_id", 128),
        _field(agent, "user_agent", 512),
        _country(country),
        account_us,
    )


def epoch_micros(moment: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _field(value: object, name: str, limit: int, *, required: bool = False) -> str | None:
    if _blank(value):
        if required:
            raise RowProblem(f"{name} is missing")
        return None
    text = str(value).strip()
    if len(text) > limit or _CONTROL.search(text):
        raise RowProblem(f"{name} {text[:40]!r} is longer than {limit} characters or has control characters")
    return text


def header_problem(header: Sequence[str]) -> str | None:
    """Why a play file's header cannot be read as plays (the missing columns, and what it has), or None."""
    missing = [c for c in REQUIRED if c not in header]
    if not missing:
        return None
    found = ", ".join(repr(c[:40]) for c in header[:8]) or "nothing"
    return f"header lacks column(s) {', '.join(missing)}; need {', '.join(REQUIRED)}; found {found}"


def iter_play_file(path: Path, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
    """Read a CSV or Parquet play file in chunks of at most ``chunk_rows`` rows: memory stays bounded."""
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", hint="check the path")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_chunks(path, chunk_rows)
        return
    if suffix not in (".csv", ".txt"):
        raise InvalidInput(f"{path.name}: unknown play file type {suffix!r}", hint="use a .csv or .parquet file")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from _csv_chunks(handle, chunk_rows)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", hint="pass a UTF-8 CSV file with a header row") from None


def _csv_chunks(handle: TextIO, chunk_rows: int) -> Iterator[RowChunk]:
    """Rows in chunks; a row the CSV reader refuses (a field over its size limit, a NUL byte, a bare CR)
    becomes a numbered error like any other bad row, and reading goes on with the next one."""
    reader = csv.reader(handle)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        yield RowChunk(errors=[RowError(1, f"header row is not valid CSV: {exc}")])
        return
    problem = header_problem(header)
    if problem is not None:
        yield RowChunk(errors=[RowError(1, problem)])
        return
    where = [header.index(c) if c in header else None for c in COLUMNS]
    width = len(header)
    chunk = RowChunk()
    line = 1
    while True:
        line += 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            chunk.errors.append(RowError(line, f"row is not valid CSV: {exc}"))
            continue
        if len(values) < width:
            values = values + [""] * (width - len(values))
        _take(chunk, line, [None if i is None else values[i] for i in where])
        if len(chunk.lines) + len(chunk.errors) >= chunk_rows:
            yield chunk
            chunk = RowChunk()
    yield chunk


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[RowChunk]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        raise InvalidInput("reading Parquet needs pyarrow", hint="pip install 'consentune[parquet]'") from None
    try:
        source = pq.ParquetFile(path)
        line = 1
        for batch in source.iter_batches(batch_size=chunk_rows):
            data: dict[str, list[Any]] = batch.to_pydict()
            size = batch.num_rows
            columns = [data.get(c, [None] * size) for c in COLUMNS]
            chunk = RowChunk()
            for i in range(size):
                _take(chunk, line, [column[i] for column in columns])
                line += 1
            yield chunk
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path} as Parquet: {exc}", hint="check the file") from None


def _take(chunk: RowChunk, line: int, values: Sequence[object]) -> None:
    try:
        chunk.rows.append(play_row(values))
        chunk.lines.append(line)
    except RowProblem as exc:
        chunk.errors.append(RowError(line, str(exc)))


def _blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _text(row: Mapping[str, object], name: str, *, limit: int, required: bool = False) -> str | None:
    value = row.get(name)
    if _blank(value):
        if required:
            raise RowProblem(f"{name} is missing")
        return None
    if not isinstance(value, str | int | float):
        raise RowProblem(f"{name} must be text, not {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise RowProblem(
            f"{name} {text[:40]!r} is longer than {limit} characters or has control characters or lone surrogates"
        )
    return text


def _time(value: object, name: str = "played_at") -> datetime:
    if _blank(value):
        raise RowProblem(f"{name} is missing")
    try:
        return _moment(value, name)
    except RowProblem:
        raise
    except (OverflowError, OSError, ValueError):  # ValueError: NaN, or a year past 9999 after conversion
        raise RowProblem(f"{name} {str(value)[:40]!r} is out of range") from None


def _optional_time(row: Mapping[str, object], name: str) -> datetime | None:
    value = row.get(name)
    return None if _blank(value) else _time(value, name)


def _moment(value: object, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        text = str(value).strip()
        try:
            moment = _iso(text) if _looks_iso(text) else datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            try:
                moment = _iso(text)
            except ValueError:
                raise RowProblem(f"{name} {text!r} is neither ISO 8601 nor Unix seconds") from None
    if moment.tzinfo is None:
        raise RowProblem(f"{name} {moment.isoformat()} has no time zone (append Z or +00:00)")
    return moment.astimezone(UTC)


def _looks_iso(text: str) -> bool:
    return "-" in text[1:] or ":" in text


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)


def _ms(value: object) -> int:
    if _blank(value):
        raise RowProblem("ms_played is missing")
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
        raise RowProblem(f"ms_played {str(value)[:40]!r} is not a number") from None
    if not number.is_integer() or not 0 <= number <= MAX_MS_PLAYED:
        raise RowProblem(f"ms_played {value!r} must be a whole number of milliseconds in 0..{MAX_MS_PLAYED}")
    return int(number)


def _ip(value: object) -> str | None:
    if _blank(value):
        return None
    address = _address(str(value).strip())
    if address is None:
        raise RowProblem(f"ip {value!r} is not an IPv4 or IPv6 address")
    if len(address) > 45:
        raise RowProblem(f"ip {value!r} is longer than 45 characters (drop the zone id)")
    return address


@functools.lru_cache(maxsize=65_536)
def _address(text: str) -> str | None:
    """The canonical form of an address (play logs repeat addresses, so this is cached), or None."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _country(value: object) -> str | None:
    if _blank(value):
        return None
    code = str(value).strip().upper()
    if len(code) != 2 or not code.isalpha() or not code.isascii():
        raise RowProblem(f"country {value!r} is not a two-letter ISO 3166 code")
    return code


def read_play_file(path: Path) -> Parsed:
    """Parse a CSV or Parquet play file in the shared schema (bad rows become numbered errors)."""
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", hint="check the path")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise InvalidInput("reading Parquet needs pyarrow", hint="pip install 'consentune[parquet]'") from None
        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {path} as Parquet: {exc}", hint="check the file") from None
        return parse_records(enumerate(rows, start=1))
    if suffix not in (".csv", ".txt"):
        raise InvalidInput(f"{path.name}: unknown play file type {suffix!r}", hint="use a .csv or .parquet file")
    try:
        return parse_csv(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", hint="pass a UTF-8 CSV file with a header row") from None


__all__ = [
    "CHUNK_ROWS",
    "COLUMNS",
    "OPTIONAL",
    "REQUIRED",
    "Parsed",
    "PlayRow",
    "RowChunk",
    "RowError",
    "epoch_micros",
    "iter_play_file",
    "parse_csv",
    "parse_records",
    "parse_row",
    "play_row",
    "read_play_file",
]
