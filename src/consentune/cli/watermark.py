"""``consentune watermark detect FILE``: which account a leaked file was streamed to, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, print_json, service
from consentune.errors import InvalidInput, NotFound
from consentune.types import STREAM

if TYPE_CHECKING:  # numpy, scipy and the service load only when a file is examined
    from consentune.service import Consentune
    from consentune.shield.serial import StreamSerial

watermark_app = typer.Typer(
    help="Forensic stream watermarks: trace a leaked file to its account.",
)


@watermark_app.command("detect")
def detect(
    file: Annotated[Path, typer.Argument(help="audio file to examine (at least 30 s for a reliable answer)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Name the listener account and the minute the stream in FILE was issued."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", hint="check the path") from None
    from consentune.shield.serial import open_serial, watermark_keys
    from consentune.shield.watermark import detect as detect_mark

    svc = service()
    samples, rate = svc.gate.decode_upload(data, filename=file.name, mono=True)
    keys = watermark_keys(svc.settings.shield_secret_path.read_bytes())
    found = detect_mark(samples, rate, keys.mark)
    if found is None:
        raise NotFound(
            f"no watermark found in {file}",
            hint="give 30 s or more of the stream, from this server (its shield secret)",
        )
    serial = open_serial(found.payload, key=keys.serial)
    issued = datetime.fromtimestamp(serial.minute_at, tz=UTC).isoformat()
    streams = _ledger_streams(svc, data, file.name, serial)
    report = {
        "file": str(file),
        "account_prefix": serial.account_prefix,
        "issued_minute": issued,
        "confidence": found.confidence,
        "speed": found.speed,
        "ledger_streams": streams,
    }
    if as_json:
        print_json(report)
        return
    console.print(
        f"{file}: streamed to account {serial.account_prefix}… in the minute from {issued} "
        f"(sync z {found.confidence:.1f}, speed ×{found.speed:.4f})"
    )
    for entry in streams:
        console.print(f"  ledger entry {entry['sequence']}: {entry['time']} {entry['actor']} streamed {entry['track']}")


def _ledger_streams(svc: Consentune, data: bytes, filename: str, serial: StreamSerial) -> list[dict[str, object]]:
    """Ledger stream entries issued in the serial's minute for the track the file matches (if indexed)."""
    tracks = {m.track_id for m in svc.identify.identify(data, actor=ADMIN_ACTOR, filename=filename)}
    found = []
    for track in sorted(tracks):
        for entry in svc.ledger.track_entries(track=track, purpose=STREAM, limit=10_000):
            at = datetime.strptime(entry.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
            if serial.minute_at <= at < serial.minute_at + 60:
                found.append({"sequence": entry.sequence, "time": entry.time, "actor": entry.actor, "track": track})
    return found
