"""Play events: import (CSV, Parquet, JSON batches) with per-row errors; reads go through the gate."""

from consentune.plays.parse import RowError, parse_csv, parse_records, read_play_file
from consentune.plays.service import ImportReport, PlayLog

__all__ = ["ImportReport", "PlayLog", "RowError", "parse_csv", "parse_records", "read_play_file"]
