"""Bulk CSV play import: pyarrow reads the file in blocks and checks whole columns at once.

A row that passes every column check becomes a :data:`PlayRow` without any
per-row Python work beyond building the tuple; any row a check flags (or
anything unusual: surrounding spaces, fractional seconds, far-off dates) is
handed to :func:`play_row`, which either accepts it or words the error.  So
the result is the same as the row-by-row parser, only faster.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from consentune.errors import InvalidInput
from consentune.plays.parse import (
    COLUMNS,
    MAX_MS_PLAYED,
    REQUIRED,
    RowChunk,
    RowError,
    RowProblem,
    header_problem,
    iter_play_file,
    play_row,
)

_ISO = "%Y-%m-%dT%H:%M:%S%z"
_NUMBER = r"^-?[0-9]{1,12}$"
_CONTROL = r"[\x00-\x1f]"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_FIRST_US = -62_135_596_800 * 1_000_000  # 0001-01-01T00:00:00Z
_LAST_US = 253_402_300_799 * 1_000_000  # 9999-12-31T23:59:59Z
_LIMITS = {"user_id": 64, "track_id": 32, "device_id": 128, "user_agent": 512}
BLOCK_BYTES = 4 << 20


def arrow_csv_chunks(path: Path, *, block_bytes: int = BLOCK_BYTES) -> Iterator[RowChunk]:
    """Chunks of about ``block_bytes`` of CSV each; needs pyarrow (``pip install 'consentune[parquet]'``)."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

    header = _header(path)
    problem = header_problem(header)
    if problem is not None:
        yield RowChunk(errors=[RowError(1, problem)])
        return
    skipped: list[RowError] = []

    def bad_row(row: Any) -> str:
        line = row.number if row.number is not None else 0
        skipped.append(RowError(line, f"row has {row.actual_columns} fields; the header has {row.expected_columns}"))
        return "skip"

    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), include_columns=[c for c in COLUMNS if c in header]
    )
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=block_bytes),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=bad_row),
            convert_options=options,
        )
    except (OSError, pa.ArrowInvalid):
        # e.g. one field larger than a block: the row parser reports such rows one by one
        yield from iter_play_file(path)
        return
    line = 2
    try:
        for batch in reader:
            chunk = _chunk(batch, first_line=line)
            chunk.errors.extend(skipped)
            skipped.clear()
            line += batch.num_rows
            yield chunk
    except (OSError, pa.ArrowInvalid) as exc:
        yield RowChunk(errors=[RowError(line, f"the file cannot be read from here on: {exc}")])


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", hint="pass a UTF-8 CSV file with a header row") from None


def _chunk(batch: Any, *, first_line: int) -> RowChunk:
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    size = batch.num_rows
    names = batch.schema.names
    empty = pa.array([""] * size, pa.string())
    raw = {c: batch.column(names.index(c)) if c in names else empty for c in COLUMNS}
    ok = pa.array([True] * size)
    for name, limit in _LIMITS.items():
        ok = pc.and_(ok, _text_ok(raw[name], limit, required=name in REQUIRED))
    played, played_ok = _times(raw["played_at"], required=True)
    account, account_ok = _times(raw["account_created_at"], required=False)
    ms_ok = pc.match_substring_regex(raw["ms_played"], r"^[0-9]{1,9}$")
    ms = pc.cast(pc.if_else(ms_ok, raw["ms_played"], "0"), pa.int64())
    ms_ok = pc.and_(ms_ok, pc.less_equal(ms, MAX_MS_PLAYED))
    country = raw["country"]
    country_ok = pc.or_(pc.equal(country, ""), pc.match_substring_regex(country, r"^[A-Za-z]{2}$"))
    ok = pc.and_(pc.and_(pc.and_(ok, played_ok), pc.and_(account_ok, ms_ok)), country_ok)
    ok = pc.fill_null(ok, False)
    return _rows(raw, ok, played, account, ms, first_line)


def _text_ok(column: Any, limit: int, *, required: bool) -> Any:
    import pyarrow.compute as pc

    fine = pc.and_(
        pc.less_equal(pc.utf8_length(column), limit),
        pc.invert(pc.match_substring_regex(column, _CONTROL)),
    )
    fine = pc.and_(fine, pc.equal(pc.utf8_trim_whitespace(column), column))
    return pc.and_(fine, pc.not_equal(column, "")) if required else fine


def _times(column: Any, *, required: bool) -> tuple[Any, Any]:
    """(microseconds since the epoch, fine) for ISO 8601 with a zone or whole Unix seconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    iso = pc.cast(pc.strptime(column, format=_ISO, unit="us", error_is_null=True), pa.int64())
    numeric = pc.match_substring_regex(column, _NUMBER)
    seconds = pc.cast(pc.if_else(numeric, column, "0"), pa.int64())
    micros = pc.if_else(numeric, pc.multiply(seconds, 1_000_000), iso)
    inside = pc.and_(pc.greater_equal(micros, _FIRST_US), pc.less_equal(micros, _LAST_US))
    fine = pc.fill_null(inside, False)
    if not required:
        fine = pc.or_(fine, pc.equal(column, ""))
    return micros, fine


def _rows(raw: dict[str, Any], ok: Any, played: Any, account: Any, ms: Any, first_line: int) -> RowChunk:
    import pyarrow as pa
    import pyarrow.compute as pc

    def blank_null(column: Any) -> Any:
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)

    ip = raw["ip"]
    ipv4 = pc.match_substring_regex(ip, _IPV4)  # already canonical: no per-row parsing
    ok = pc.and_(ok, pc.or_(ipv4, pc.equal(ip, "")))
    account = pc.if_else(pc.equal(raw["account_created_at"], ""), pa.scalar(None, pa.int64()), account)
    columns = [raw["user_id"], raw["track_id"], played, ms, blank_null(ip), blank_null(raw["device_id"]),
               blank_null(raw["user_agent"]), blank_null(pc.utf8_upper(raw["country"])), account]  # fmt: skip
    chunk = RowChunk()
    chunk.rows = list(zip(*(pc.filter(c, ok).to_pylist() for c in columns), strict=True))
    chunk.lines = [first_line + i for i in pc.indices_nonzero(ok).to_pylist()]
    for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
        try:
            chunk.rows.append(play_row([raw[c][i].as_py() for c in COLUMNS]))
            chunk.lines.append(first_line + i)
        except RowProblem as exc:
            chunk.errors.append(RowError(first_line + i, str(exc)))
    return chunk


__all__ = ["BLOCK_BYTES", "arrow_csv_chunks"]
