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
    streams = _marked_streams(svc, found.payload.hex()) or _ledger_streams(svc, data, file.name, serial)
    report = {
        "file": str(file),
        "serial": found.payload.hex(),
        "listener_prefix": serial.listener_prefix,
        "issued_minute": issued,
        "confidence": found.confidence,
        "speed": found.speed,
        "streams": streams,
    }
    if as_json:
        print_json(report)
        return
    console.print(
        f"{file}: streamed to {serial.listener_prefix}… in the minute from {issued} "
        f"(sync z {found.confidence:.1f}, speed ×{found.speed:.4f})"
    )
    for entry in streams:
        who = entry.get("account_id") or entry.get("session_id") or entry.get("actor")
        ledger = ", ".join(str(e["sequence"]) for e in entry["ledger"]) or "none found"  # type: ignore[attr-defined]
        console.print(f"  {entry['time']} {who} streamed {entry['track']} (ledger entry {ledger})")


def _marked_streams(svc: Consentune, serial: str) -> list[dict[str, object]]:
    """The streams the server recorded for ``serial``, each with the ledger ``stream`` entry of its play."""
    found: list[dict[str, object]] = []
    for mark in svc.store.stream_marks(serial):
        actor = svc.listen.ledger_actor(mark.session_id)
        entries = svc.ledger.track_entries(track=mark.track_id, purpose=STREAM, limit=10_000)
        mine = [e for e in entries if e.actor == actor]
        # the session's grant for this track closest to the play (a session may replay a track)
        nearest = sorted(mine, key=lambda e: abs(_epoch(e.time) - mark.issued_at))[:1]
        ledger = [{"sequence": e.sequence, "time": e.time, "actor": e.actor} for e in nearest]
        time = datetime.fromtimestamp(mark.issued_at, tz=UTC).isoformat()
        found.append({"account_id": mark.account_id, "session_id": mark.session_id, "track": mark.track_id,
                      "time": time, "ledger": ledger})  # fmt: skip
    return found


def _ledger_streams(svc: Consentune, data: bytes, filename: str, serial: StreamSerial) -> list[dict[str, object]]:
    """Without a stream record (another server, pruned): the ledger stream entries issued in the serial's
    minute for the track the file matches (if the identification index has it)."""
    tracks = {m.track_id for m in svc.identify.identify(data, actor=ADMIN_ACTOR, filename=filename)}
    found: list[dict[str, object]] = []
    for track in sorted(tracks):
        for entry in svc.ledger.track_entries(track=track, purpose=STREAM, limit=10_000):
            if serial.minute_at <= _epoch(entry.time) < serial.minute_at + 60:
                ledger = [{"sequence": entry.sequence, "time": entry.time, "actor": entry.actor}]
                found.append({"actor": entry.actor, "track": track, "time": entry.time, "ledger": ledger})
    return found


def _epoch(ledger_time: str) -> float:
    return datetime.strptime(ledger_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
