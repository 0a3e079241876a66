"""``consentune consent show|set|revoke`` and ``consentune terms show|publish|accept``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, new_table, print_json, service
from consentune.errors import InvalidInput
from consentune.types import Purpose, TrackId

consent_app = typer.Typer(help="See and change an artist's consent.")
terms_app = typer.Typer(help="Platform terms versions.")


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not an ISO 8601 time", hint="e.g. 2027-01-31T00:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} {value!r} has no time zone", hint="append +00:00 for UTC")
    try:
        parsed.astimezone(UTC)  # stored in UTC: a time that has none poisons every later read of the rules
    except OverflowError:
        raise InvalidInput(
            f"{name} {value!r} is outside the years 1..9999 in UTC", hint="pick an earlier date"
        ) from None
    return parsed


@consent_app.command("show")
def show(artist: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show per-purpose consent of an artist (terms kind, their rule, track overrides)."""
    svc = service()
    view = svc.consent.view(svc.catalog.artist(artist))
    rows = [
        {
            "purpose": p.purpose,
            "kind": p.kind.value if p.kind else None,
            "artist_rule": None if p.artist_rule is None else ("allow" if p.artist_rule.allow else "deny"),
            "track_overrides": {r.track_id: "allow" if r.allow else "deny" for r in p.track_rules},
            "allowed": p.effective_default,
        }
        for p in view.purposes
    ]
    if as_json:
        print_json({"artist": view.artist.id, "terms_version": view.terms.version, "purposes": rows})
        return
    table = new_table(
        "purpose",
        "terms",
        "artist rule",
        "track overrides",
        "allowed",
        title=f"{view.artist.name} — terms v{view.terms.version}",
    )
    for row in rows:
        overrides = ", ".join(f"{t}={v}" for t, v in row["track_overrides"].items()) or "-"  # type: ignore[union-attr]
        table.add_row(
            str(row["purpose"]),
            str(row["kind"]),
            str(row["artist_rule"] or "-"),
            overrides,
            "yes" if row["allowed"] else "no",
        )
    console.print(table)


@consent_app.command("set")
def set_(
    artist: str,
    purpose: str,
    answer: Annotated[str, typer.Argument(help="allow or deny")],
    track: Annotated[str | None, typer.Option(help="only this track")] = None,
    valid_from: Annotated[str | None, typer.Option(help="ISO 8601 start")] = None,
    valid_until: Annotated[str | None, typer.Option(help="ISO 8601 end")] = None,
) -> None:
    """Record an artist's allow/deny for a purpose (all tracks or one)."""
    if answer not in ("allow", "deny"):
        raise InvalidInput(
            f"answer {answer!r} must be allow or deny",
            hint="consentune consent set ARTIST PURPOSE allow",
        )
    svc = service()
    rule = svc.consent.set(
        svc.catalog.artist(artist),
        purpose=Purpose(purpose),
        allow=answer == "allow",
        actor=ADMIN_ACTOR,
        track=TrackId(track) if track else None,
        valid_from=_when(valid_from, "--valid-from"),
        valid_until=_when(valid_until, "--valid-until"),
    )
    console.print(f"rule {rule.id}: {answer} {purpose} for {track or 'all tracks'}")


@consent_app.command("clear")
def clear(
    artist: str,
    purpose: str,
    track: Annotated[str, typer.Option(help="the track whose own choice ends")],
) -> None:
    """Remove a track's own choice: the track follows the artist's all-tracks choice again."""
    svc = service()
    owner = svc.catalog.artist(artist)
    svc.consent.clear(owner, purpose=Purpose(purpose), track=TrackId(track), actor=ADMIN_ACTOR)
    decision = svc.gate.decide(purpose=Purpose(purpose), tracks=[TrackId(track)])
    state = "allowed" if decision.allowed[0] else "denied"
    console.print(f"{purpose} for track {track} now follows {owner.name}'s all-tracks choice: {state}")


@consent_app.command("revoke")
def revoke(
    artist: str,
    purpose: str,
    track: Annotated[str | None, typer.Option(help="only this track")] = None,
) -> None:
    """Withdraw consent for a purpose and purge what was derived under it."""
    svc = service()
    svc.consent.revoke(
        svc.catalog.artist(artist),
        purpose=Purpose(purpose),
        actor=ADMIN_ACTOR,
        track=TrackId(track) if track else None,
    )
    job = svc.consent.purge_jobs()[-1]
    console.print(
        f"revoked {purpose} for {track or 'all tracks'}; purge job {job.id}: {job.status}, {job.purged} items removed"
    )


@terms_app.command("show")
def terms_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List all terms versions."""
    versions = service().consent.all_terms()
    if as_json:
        print_json(
            {
                v: {"kinds": {p: k.value for p, k in t.kinds.items()}, "summary": t.summary}
                for v, t in sorted(versions.items())
            }
        )
        return
    for v, t in sorted(versions.items()):
        table = new_table("purpose", "kind", title=f"terms v{v}: {t.summary}")
        for p, k in t.kinds.items():
            table.add_row(p, k.value)
        console.print(table)


_TERMS_SHAPE = 'write {"kinds": {"purpose": "required|opt-out|opt-in", ...}, "summary": "..."}'


@terms_app.command("publish")
def terms_publish(
    file: Annotated[Path, typer.Argument(help='JSON: {"kinds": {purpose: kind}, "summary": "..."}')],
) -> None:
    """Publish a new terms version (artists move to it when they accept)."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(body, dict):
            raise TypeError(f"the file holds a JSON {_json_kind(body)}, not an object")
        kinds, summary = body.get("kinds"), body.get("summary", "")
        if not isinstance(kinds, dict) or not all(isinstance(v, str) for v in kinds.values()):
            raise TypeError("kinds must map each purpose to required, opt-out or opt-in")
        if not isinstance(summary, str):
            raise TypeError(f"summary must be a string, not a JSON {_json_kind(summary)}")
    except RecursionError:  # json nests one Python frame per level
        raise InvalidInput(f"cannot read terms from {file}: JSON nested too deeply", hint=_TERMS_SHAPE) from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read terms from {file}: {exc}", hint=_TERMS_SHAPE) from None
    terms = service().consent.publish_terms(kinds, summary=summary, actor=ADMIN_ACTOR)
    console.print(f"published terms v{terms.version}")


def _json_kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


@terms_app.command("accept")
def terms_accept(artist: str, version: int) -> None:
    """Record that an artist accepted a terms version."""
    svc = service()
    svc.consent.accept_terms(svc.catalog.artist(artist), version=version, actor=ADMIN_ACTOR)
    console.print(f"{artist} now on terms v{version}")


@consent_app.command("sweep")
def sweep() -> None:
    """Finish failed purge jobs and purge derived data whose consent has lapsed; `serve` also runs this periodically."""
    from consentune.service import reconcile_fingerprints

    svc = service()
    retried = svc.consent.retry_pending_purges(actor=ADMIN_ACTOR)
    purged = svc.gate.sweep(actor=ADMIN_ACTOR)
    reconcile_fingerprints(svc, actor=ADMIN_ACTOR, reindex=svc.settings.identify_at_ingest, recent_only=True)
    console.print(
        f"finished {retried} pending purge jobs; purged {purged} derived items whose purpose is no longer allowed"
    )
