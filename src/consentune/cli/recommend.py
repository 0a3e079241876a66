"""``consentune recommend train|for-user``."""

from __future__ import annotations

from typing import Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, print_json, service

recommend_app = typer.Typer(help="Consent-aware recommendations.")


@recommend_app.command("train")
def train() -> None:
    """Train on plays of tracks whose `recommend` consent holds (each track's decision is logged)."""
    report = service().recommend.train(actor=ADMIN_ACTOR)
    console.print(
        f"model {report.model_id}: {report.tracks_used} tracks used, {report.tracks_refused} refused by consent, "
        f"{report.users} users, {report.plays} plays, {report.seconds:.2f} s"
    )


@recommend_app.command("for-user")
def for_user(
    user: str,
    n: Annotated[int, typer.Option("--n", min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recommend tracks for a listener from their latest plays (no retraining needed)."""
    svc = service()
    recs = svc.recommend.for_user(user, n=n, actor=ADMIN_ACTOR)
    if as_json:
        print_json([{"track": r.track, "score": round(r.score, 6), "source": r.source} for r in recs])
        return
    for rank, r in enumerate(recs, start=1):
        track = svc.catalog.track(r.track)
        console.print(f"{rank:2d}. {r.track}  {track.title}  ({r.source}, {r.score:.3f})")
