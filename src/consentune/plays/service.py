"""PlayLog: import play events; rows for unknown tracks or with bad fields are reported, good rows kept.

Good rows of one import are written in one transaction, so an import either
lands whole (minus the reported rows) or not at all; a play already stored
(same user, time and track) is not stored or counted again, so re-running an
import, or retrying a batch whose answer was lost, changes nothing.  Files are read in
bounded chunks (CSV through pyarrow's column checks when it is installed),
so memory does not grow with the file; at most ``MAX_ERRORS`` rejected rows
are kept with their messages, the rest only counted.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentune.plays.parse import (
    Parsed,
    RowChunk,
    RowError,
    epoch_micros,
    iter_play_file,
    parse_records,
    play_row,
)
from consentune.ports import CatalogRepo, PlayRepo, PlayRow
from consentune.types import ArtistId, TrackId

FUTURE_SLACK = timedelta(days=1)
MAX_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int  # good rows, all stored now: new ones plus those already stored
    errors: tuple[RowError, ...]  # the first MAX_ERRORS rejected rows, by line
    rejected: int = 0  # every rejected row
    duplicates: int = 0  # good rows that were already stored (same user, time and track): added nothing


class PlayLog:
    def __init__(self, *, plays: PlayRepo, catalog: CatalogRepo) -> None:
        self._plays = plays
        self._catalog = catalog

    def import_file(self, path: Path) -> ImportReport:
        return self._import(_chunks_of(path))

    def import_records(self, records: list[dict[str, object]]) -> ImportReport:
        """A JSON batch; errors are numbered by the row's index in the batch."""
        return self.import_parsed(parse_records(enumerate(records)))

    def import_parsed(self, parsed: Parsed) -> ImportReport:
        chunk = RowChunk(errors=list(parsed.errors))
        for event, line in zip(parsed.events, parsed.lines, strict=True):
            chunk.rows.append(
                play_row([event.user_id, event.track_id, event.played_at, event.ms_played, event.ip, event.device_id,
                          event.user_agent, event.country, event.account_created_at])
            )  # fmt: skip
            chunk.lines.append(line)
        return self._import([chunk])

    def _import(self, chunks: Iterable[RowChunk]) -> ImportReport:
        errors: list[RowError] = []
        imported = rejected = new = 0
        horizon = epoch_micros(datetime.now(UTC) + FUTURE_SLACK)
        with self._plays.play_writer() as write:
            for chunk in chunks:
                good, bad, owners = self._check(chunk, horizon)
                new += write(good, owners)
                imported += len(good)
                rejected += len(bad)
                errors = sorted([*errors, *bad], key=lambda e: e.line)[:MAX_ERRORS]
        return ImportReport(imported, tuple(errors), rejected, duplicates=imported - new)

    def _check(self, chunk: RowChunk, horizon_us: int) -> tuple[list[PlayRow], list[RowError], dict[TrackId, ArtistId]]:
        errors = list(chunk.errors)
        known = self._catalog.track_owners(sorted({TrackId(r[1]) for r in chunk.rows}))
        good = []
        for row, line in zip(chunk.rows, chunk.lines, strict=True):
            if row[1] not in known:
                errors.append(RowError(line, f"track_id {row[1]!r} is not in the catalogue"))
            elif row[2] > horizon_us:
                played = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=row[2])
                errors.append(RowError(line, f"played_at {played.isoformat()} is in the future"))
            else:
                good.append(row)
        return good, errors, known


def _chunks_of(path: Path) -> Iterator[RowChunk]:
    """Bounded chunks of the file: pyarrow's column checks for CSV when installed, else row by row."""
    if path.suffix.lower() in (".csv", ".txt") and path.exists() and importlib.util.find_spec("pyarrow"):
        from consentune.plays.fastcsv import arrow_csv_chunks

        return arrow_csv_chunks(path)
    return iter_play_file(path)


__all__ = ["MAX_ERRORS", "ImportReport", "PlayLog"]
