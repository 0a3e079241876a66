"""PlayLog: import play events; rows for unknown tracks or with bad fields are reported, good rows kept.

Good rows of one import are written in one transaction, so an import either
lands whole (minus the reported rows) or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentune.plays.parse import Parsed, RowError, parse_records, read_play_file
from consentune.ports import CatalogRepo, PlayRepo

FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    errors: tuple[RowError, ...]


class PlayLog:
    def __init__(self, *, plays: PlayRepo, catalog: CatalogRepo) -> None:
        self._plays = plays
        self._catalog = catalog

    def import_file(self, path: Path) -> ImportReport:
        return self.import_parsed(read_play_file(path))

    def import_records(self, records: list[dict[str, object]]) -> ImportReport:
        """A JSON batch; errors are numbered by the row's index in the batch."""
        return self.import_parsed(parse_records(enumerate(records)))

    def import_parsed(self, parsed: Parsed) -> ImportReport:
        errors = list(parsed.errors)
        known = self._catalog.track_owners(sorted({e.track_id for e in parsed.events}))
        horizon = datetime.now(UTC) + FUTURE_SLACK
        good = []
        for event, line in zip(parsed.events, parsed.lines, strict=True):
            if event.track_id not in known:
                errors.append(RowError(line, f"track_id {event.track_id!r} is not in the catalogue"))
            elif event.played_at > horizon:
                errors.append(RowError(line, f"played_at {event.played_at.isoformat()} is in the future"))
            else:
                good.append(event)
        imported = self._plays.add_plays(good)
        return ImportReport(imported, tuple(sorted(errors, key=lambda e: e.line)))


__all__ = ["ImportReport", "PlayLog"]
