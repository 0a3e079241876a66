"""``consentune jobs run|resume|list|show|cancel``: batch work on the local process pool or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from consentune.cli.common import console, new_table, print_json, service
from consentune.errors import InvalidInput
from consentune.types import TrackId

if TYPE_CHECKING:  # the service, the engines and rich load only when a verb runs
    from consentune.jobs import Job, JobProgress
    from consentune.service import Consentune

_DEFAULT_BATCH = 16  # consentune.jobs.DEFAULT_BATCH, repeated so `--help` imports nothing heavy

jobs_app = typer.Typer(
    help="Batch jobs (analyze, fingerprint, train-recommend, fraud-rescan, import-plays) on a process pool or Ray.",
)

JOB_ACTOR = "service:jobs"
_ALIASES = {"index": "fingerprint"}
_PLAY_KINDS = ("train-recommend", "fraud-rescan", "import-plays")
_DEFAULT_PARTITION = 2_000  # consentune.jobs.DEFAULT_PARTITION_TRACKS


def _rate_column(unit: str) -> Any:
    """A progress column: ``unit`` (tracks, chunks) per second over the run so far."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: object) -> Text:
            speed = getattr(task, "speed", None)
            return Text(f"-- {unit}/s" if speed is None else f"{speed:.2f} {unit}/s")

    return RateColumn()


def _kind(name: str) -> str:
    from consentune.jobs import KINDS

    name = _ALIASES.get(name, name)
    if name not in KINDS and name not in _PLAY_KINDS:
        raise InvalidInput(f"unknown job kind {name!r}", hint=f"use one of {sorted([*KINDS, *_PLAY_KINDS])}")
    return name


def _engine_name(name: str) -> str:
    from consentune.engines import ENGINES

    if name not in ENGINES:
        raise InvalidInput(f"unknown engine {name!r}", hint=f"use one of {', '.join(ENGINES)}")
    return name


@jobs_app.command("run")
def run(
    kind: Annotated[
        str, typer.Argument(help="analyze | fingerprint (alias: index) | train-recommend | fraud-rescan | import-plays")
    ],
    engine: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    tracks: Annotated[
        str | None, typer.Option(help="comma-separated track ids (default: every unprocessed track)")
    ] = None,
    redo: Annotated[bool, typer.Option("--redo", help="process tracks that already have results too")] = False,
    batch: Annotated[
        int | None,
        typer.Option(
            help=f"tracks per task, one gate request and ledger append each (default {_DEFAULT_BATCH}; "
            f"{_DEFAULT_PARTITION} for the plays kinds)"
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="parallel tasks (default: every core / CPU of the cluster)")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default CONSENTUNE_RAY_ADDRESS)")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="import-plays: the CSV file of plays")] = None,
    chunk_mb: Annotated[float, typer.Option(help="import-plays: megabytes of the file per task")] = 32.0,
) -> None:
    """Create a job and run it, with a progress bar; `jobs resume ID` continues it if stopped."""
    name, engine = _kind(kind), _engine_name(engine)
    svc = service()
    if name == "import-plays":
        if file is None:
            raise InvalidInput("import-plays needs the file to import", hint="pass --file plays.csv")
        job = svc.jobs.create_import(file, actor=JOB_ACTOR, engine=engine, chunk_bytes=int(chunk_mb * 1024 * 1024))
        console.print(f"job {job.id}: import-plays of {file.name} in {job.tasks} chunks")
        _drive(svc, job, engine=engine, workers=workers, ray_address=ray_address, force=False)
        return
    ids = [TrackId(t.strip()) for t in tracks.split(",") if t.strip()] if tracks else _all_tracks(svc)
    todo = ids if redo or tracks else svc.jobs.pending(name, ids)
    if not todo:
        console.print(
            f"nothing to do: all {len(ids)} tracks already have {name} results (--redo to process them again)"
        )
        return
    size = batch or (_DEFAULT_PARTITION if name in _PLAY_KINDS else _DEFAULT_BATCH)
    job = svc.jobs.create(name, todo, actor=JOB_ACTOR, engine=engine, batch=size)
    console.print(
        f"job {job.id}: {name} over {job.tracks} tracks in {job.tasks} tasks ({len(ids) - len(todo)} already done)"
    )
    _drive(svc, job, engine=engine, workers=workers, ray_address=ray_address, force=False)


@jobs_app.command("resume")
def resume(
    job_id: int,
    engine: Annotated[str | None, typer.Option(help="local or ray (default: the job's engine)")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel tasks")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join")] = None,
    force: Annotated[bool, typer.Option("--force", help="take over even if the recorded driver may be alive")] = False,
) -> None:
    """Continue a job from its unfinished tasks (after a crash, kill or failure)."""
    svc = service()
    job = svc.jobs.get(job_id)
    _drive(svc, job, engine=_engine_name(engine or job.engine), workers=workers, ray_address=ray_address, force=force)


def _drive(
    svc: Consentune, job: Job, *, engine: str, workers: int | None, ray_address: str | None, force: bool
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from consentune.engines import open_engine

    address = ray_address or svc.settings.ray_address
    # the plays kinds run on the driver (threads for imports): no cluster to start for them
    runner = open_engine("local" if job.kind in _PLAY_KINDS else engine, workers=workers, address=address)
    by_task = job.kind == "import-plays"  # an import's tasks are chunks of a file, not tracks
    columns = (
        TextColumn(f"[bold]job {job.id} {job.kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        _rate_column("chunks" if by_task else "tracks"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    finished_before = job.done + job.refused + job.failed
    try:
        with Progress(*columns, console=console.rich, transient=False) as bar:
            total, before = (job.tasks, job.tasks_done) if by_task else (job.tracks, finished_before)
            task = bar.add_task(job.kind, total=total, completed=before)

            def step(p: JobProgress) -> None:
                bar.update(task, completed=p.tasks_finished if by_task else p.tracks_finished)

            ended = svc.jobs.run(job.id, engine=runner, progress=step, force=force)
    finally:
        runner.close()
    if by_task:
        console.print(
            f"job {ended.id} {ended.status}: {ended.done} plays imported, {ended.refused} rows rejected "
            f"({ended.tasks_done}/{ended.tasks} chunks)"
        )
        return
    console.print(
        f"job {ended.id} {ended.status}: {ended.done} processed, {ended.refused} refused by consent, "
        f"{ended.failed} failed ({ended.tasks_done}/{ended.tasks} tasks, {ended.compute_s:.1f} s worker time)"
    )


@jobs_app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(help="newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent jobs with their progress."""
    found = service().jobs.list(limit=limit)
    if as_json:
        print_json([_fields(job) for job in found])
        return
    table = new_table("id", "kind", "status", "engine", "tasks", "processed", "refused", "failed")
    for job in found:
        counts = (f"{job.tasks_done}/{job.tasks}", str(job.done), str(job.refused), str(job.failed))
        table.add_row(str(job.id), job.kind, job.status, job.engine, *counts)
    console.print(table)


@jobs_app.command("show")
def show(job_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One job: status, progress, counts, driver and last error."""
    fields = _fields(service().jobs.get(job_id))
    if as_json:
        print_json(fields)
        return
    table = new_table("field", "value", title=f"job {job_id}")
    for key, value in fields.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@jobs_app.command("cancel")
def cancel(job_id: int) -> None:
    """Stop a job: no further task is granted; tasks already running finish."""
    job = service().jobs.cancel(job_id)
    console.print(f"job {job.id} {job.status} ({job.tasks_done}/{job.tasks} tasks done)")


def _fields(job: Job) -> dict[str, object]:
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "engine": job.engine, "actor": job.actor,
        "tasks": job.tasks, "tasks_done": job.tasks_done, "tracks": job.tracks, "processed": job.done,
        "refused": job.refused, "failed": job.failed, "worker_seconds": job.compute_s,
        "worker_cpu_seconds": job.cpu_s, "driver": job.driver, "heartbeat": job.heartbeat_at, "error": job.error,
        "created": job.created_at, "updated": job.updated_at, "params": dict(job.params),
    }  # fmt: skip


def _all_tracks(svc: Consentune) -> list[TrackId]:
    out: list[TrackId] = []
    while page := svc.catalog.tracks(limit=1000, offset=len(out)):
        out.extend(t.id for t in page)
    return out
