"""The typer application: one module per command group."""

from __future__ import annotations

import typer

from consentune.cli.bench import bench_app
from consentune.cli.catalog import artist_app, ingest, tracks
from consentune.cli.consent import consent_app, terms_app
from consentune.cli.fraud import fraud_app, simulate_app
from consentune.cli.identify import identify, index_app, matches
from consentune.cli.jobs import jobs_app
from consentune.cli.keys import keys_app
from consentune.cli.ledger import ledger_app
from consentune.cli.organize import organize_app
from consentune.cli.plays import plays_app
from consentune.cli.recommend import recommend_app
from consentune.cli.secrets import secrets_app
from consentune.cli.serve import demo, serve
from consentune.cli.shield import shield_app
from consentune.cli.watermark import watermark_app

app = typer.Typer(
    name="consentune",
    help="AI services for audio platforms with enforceable, provable artist consent.",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(demo)
app.command()(serve)
app.command()(ingest)
app.command()(tracks)
app.command()(identify)
app.command()(matches)
app.add_typer(artist_app, name="artist")
app.add_typer(consent_app, name="consent")
app.add_typer(terms_app, name="terms")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(plays_app, name="plays")
app.add_typer(recommend_app, name="recommend")
app.add_typer(organize_app, name="organize")
app.add_typer(shield_app, name="shield")
app.add_typer(watermark_app, name="watermark")
app.add_typer(fraud_app, name="fraud")
app.add_typer(simulate_app, name="simulate")
app.add_typer(index_app, name="index")
app.add_typer(jobs_app, name="jobs")
app.add_typer(bench_app, name="bench")
app.add_typer(secrets_app, name="secrets")
