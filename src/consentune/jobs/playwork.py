"""Jobs over listening data: ``train-recommend``, ``fraud-rescan`` and ``import-plays``.

Unlike the audio kinds, these run on the driver, partition by partition:
their cost is reading and writing the database (plays through the gate,
alerts, imported rows), which a worker without a database connection cannot
do.  Each partition is a task with the same guarantees as an audio task:

- the gate decides the partition's tracks once and logs it as one ledger
  append keyed by the task (:meth:`PurposeGate.grant_work`), then plays are
  read only against that signed grant (:meth:`PurposeGate.read_work_plays`);
- its effect is idempotent per task key (a partial count file replaced
  whole, alerts with ids derived from the task, an import probed before it
  is repeated), so a driver killed at any point resumes without duplicates.

Other capabilities are reached only through :class:`PlaySinks`, plain
callables the composition root wires, so this module imports none of them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from consentune.errors import InvalidInput
from consentune.gate import PurposeGate, WorkGrant
from consentune.jobs.model import Job, Task, TaskResult
from consentune.types import DETECT_FRAUD, RECOMMEND, PlayEvent, Purpose, TrackId

_log = logging.getLogger(__name__)
MIN_PLAY_MS = 30_000  # the recommender's rule: a play counts once it passed 30 s
DEFAULT_PARTITION_TRACKS = 2_000
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
_PROBES = 3  # rows looked for in the database before a chunk is imported again


@dataclass(frozen=True, slots=True)
class PlayKind:
    name: str
    purpose: Purpose | None  # None: the job reads no listening data (import)


PLAY_KINDS: dict[str, PlayKind] = {
    "train-recommend": PlayKind("train-recommend", RECOMMEND),
    "fraud-rescan": PlayKind("fraud-rescan", DETECT_FRAUD),
    "import-plays": PlayKind("import-plays", None),
}


@dataclass(frozen=True, slots=True)
class ImportCounts:
    imported: int
    rejected: int


@dataclass(frozen=True, slots=True)
class PlaySinks:
    """What plays jobs hand their results to, wired by the composition root.

    ``publish_model(matrix, items, actor=, refused=, plays=, model_id=, key=)``
    fits and publishes a recommender (its ledger record appended once per
    ``key``); ``play_filter`` drops plays flagged as fraud; ``rescan(events,
    key)`` runs fraud detection and stores the alerts under ids derived from
    ``key`` (replacing them on a retry), returning how many;
    ``import_file(path)`` imports a plays file in one transaction;
    ``known_tracks`` filters track ids to those in the catalogue;
    ``count_plays(user, track, played_at)`` counts identical stored plays;
    ``flagged_users(users)`` are those of ``users`` with plays flagged as fraud.
    """

    publish_model: Callable[..., str]
    play_filter: Callable[[list[PlayEvent]], list[PlayEvent]]
    rescan: Callable[[Sequence[PlayEvent], str], int]
    import_file: Callable[[Path], ImportCounts]
    known_tracks: Callable[[Sequence[TrackId]], Sequence[TrackId]]
    count_plays: Callable[[str, TrackId, datetime], int]
    work_dir: Path
    flagged_users: Callable[[Sequence[str]], set[str]]


def play_kind(name: str) -> PlayKind | None:
    return PLAY_KINDS.get(name)


class PlayWork:
    """Runs one partition of a plays job on the driver; state that outlives a task goes to ``work_dir``."""

    def __init__(self, *, gate: PurposeGate, sinks: PlaySinks) -> None:
        self._gate = gate
        self._sinks = sinks

    def job_dir(self, job_id: int) -> Path:
        return self._sinks.work_dir / f"job-{job_id}"

    # -- planning -------------------------------------------------------------
    @staticmethod
    def plan_chunks(path: Path, *, chunk_bytes: int) -> int:
        """How many byte-range chunks ``path`` splits into (a chunk owns the lines that start in it)."""
        if path.suffix.lower() not in (".csv", ".txt"):
            raise InvalidInput(
                f"import-plays splits CSV files only, not {path.name!r}",
                hint="import Parquet or JSON with `consentune plays import FILE`",
            )
        if not path.is_file():
            raise InvalidInput(f"no plays file at {path}", hint="pass the path of a CSV file with a header line")
        if chunk_bytes < 1024:
            raise InvalidInput(f"chunk of {chunk_bytes} bytes", hint="use chunks of at least 1 KB")
        body = path.stat().st_size - len(_header(path))
        return max(1, -(-body // chunk_bytes))

    # -- one task -------------------------------------------------------------
    def run_task(self, job: Job, task: Task) -> TaskResult:
        started, cpu_started = time.perf_counter(), time.process_time()
        if job.kind == "import-plays":
            done, refused = self._import_chunk(job, task)
        else:
            kind = PLAY_KINDS[job.kind]
            assert kind.purpose is not None
            batch = self._gate.grant_work(
                actor=job.actor, purpose=kind.purpose, tracks=task.tracks, key=_key(job, task), action="read-plays"
            )
            reader = self._count_partition if job.kind == "train-recommend" else self._rescan_partition
            reader(job, task, batch.grant)
            done, refused = len(batch.grant.items), len(batch.denied)
        compute_ms = round((time.perf_counter() - started) * 1000)
        return TaskResult(done, refused, 0, compute_ms, round((time.process_time() - cpu_started) * 1000), "driver")

    def _pages(self, grant: WorkGrant, purpose: Purpose) -> Iterator[list[PlayEvent]]:
        return self._gate.read_work_plays(grant, purpose=purpose)

    def _count_partition(self, job: Job, task: Task, grant: WorkGrant) -> None:
        """Count (listener, track) plays past 30 s in the partition; save them as one file, replaced whole.

        The database counts the pairs (one row per pair, columns into numpy);
        only listeners with fraud flags have their plays read one by one,
        through the fraud filter, and their counts replace the database's.
        """
        tracks = np.asarray(grant.tracks, dtype=str)
        users, found, counts = self._gate.count_work_plays(grant, purpose=RECOMMEND, min_ms=MIN_PLAY_MS)
        names, heard = np.asarray(users, dtype=str), np.asarray(found, dtype=str)
        flagged = sorted(self._sinks.flagged_users(sorted(set(users)))) if users else []
        plays = np.asarray(counts, dtype=np.float32)
        if flagged:
            clean = ~np.isin(names, flagged)
            extra = self._filtered_counts(grant, flagged)
            names = np.concatenate([names[clean], np.asarray([u for u, _ in extra], dtype=str)]).astype(str)
            heard = np.concatenate([heard[clean], np.asarray([t for _, t in extra], dtype=str)]).astype(str)
            plays = np.concatenate([plays[clean], np.asarray(list(extra.values()), dtype=np.float32)])
        order = np.argsort(tracks)
        cols = order[np.searchsorted(tracks, heard, sorter=order)]
        listeners, rows = np.unique(names, return_inverse=True)
        _save_npz(
            self.job_dir(job.id) / f"part-{task.seq:06d}.npz",
            tracks=tracks,
            users=listeners,
            rows=rows.astype(np.int32),
            cols=cols.astype(np.int32),
            counts=plays,
        )

    def _filtered_counts(self, grant: WorkGrant, users: list[str]) -> Counter[tuple[str, str]]:
        """Plays past 30 s of flagged ``users``, minus those the fraud filter drops, per (listener, track)."""
        kept: Counter[tuple[str, str]] = Counter()
        for start in range(0, len(users), 500):  # bounded IN-lists, as the store's own reads
            for page in self._gate.read_work_plays(grant, purpose=RECOMMEND, users=users[start : start + 500]):
                kept.update(
                    (p.user_id, p.track_id) for p in self._sinks.play_filter(page) if p.ms_played >= MIN_PLAY_MS
                )
        return kept

    def _rescan_partition(self, job: Job, task: Task, grant: WorkGrant) -> None:
        events = [p for page in self._pages(grant, DETECT_FRAUD) for p in page]
        self._sinks.rescan(events, f"j{job.id}t{task.seq}")

    # -- import -----------------------------------------------------------------
    def _import_chunk(self, job: Job, task: Task) -> tuple[int, int]:
        """Import the lines starting in this task's byte range; never twice (see :meth:`_landed`)."""
        path = Path(str(job.params["file"]))
        chunk_bytes = int(job.params["chunk_bytes"])
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        piece, probe, result = (folder / f"chunk-{task.seq:06d}{ext}" for ext in (".csv", ".probe", ".result"))
        _write_chunk(path, piece, start=task.seq * chunk_bytes, end=(task.seq + 1) * chunk_bytes)
        try:
            probes = self._probes(piece)
            if probe.exists() and self._landed(probes, probe):  # an earlier attempt committed, then died
                return _read_counts(result)
            _save_text(probe, "\n".join(str(self._sinks.count_plays(*p)) for p in probes))
            counts = self._sinks.import_file(piece)
            _save_text(result, f"{counts.imported} {counts.rejected}")
            return counts.imported, counts.rejected
        finally:
            piece.unlink(missing_ok=True)

    def _probes(self, piece: Path) -> list[tuple[str, TrackId, datetime]]:
        """The first rows of the chunk an import keeps (they parse, their track is known): proof it landed."""
        from consentune.plays import parse_csv  # the plays service's own parser, so probes are parsed alike

        with piece.open(encoding="utf-8", newline="") as handle:
            header = handle.readline()
            while lines := [line for _, line in zip(range(2_000), handle, strict=False)]:
                events = parse_csv(header + "".join(lines)).events
                known = set(self._sinks.known_tracks(sorted({e.track_id for e in events})))
                found = [(e.user_id, e.track_id, e.played_at) for e in events if e.track_id in known]
                if found:
                    return found[:_PROBES]
        return []  # nothing in the chunk would be kept: importing it again changes nothing

    def _landed(self, probes: list[tuple[str, TrackId, datetime]], before: Path) -> bool:
        """True when an earlier attempt committed: a probe row is stored more often than before it ran.

        The import is one transaction, so either every kept row of the chunk
        is stored or none; the counts taken before it ran tell which.
        """
        counts = [int(x) for x in before.read_text().split()]
        return any(self._sinks.count_plays(*p) > n for p, n in zip(probes, counts, strict=False))

    # -- finishing ----------------------------------------------------------------
    def finish(self, job: Job) -> str | None:
        """After every task: train-recommend merges the partitions and publishes the model (its id)."""
        if job.kind != "train-recommend":
            return None
        began, cpu = time.perf_counter(), time.process_time()
        matrix, items, plays = self._merged(job.id)
        if not items or plays == 0:
            raise InvalidInput(
                f"no plays to train on: {len(items)} tracks allow recommendations, {job.refused} refuse",
                hint="import listening first (`consentune plays import FILE`), then train",
            )
        # consent may have been withdrawn since a partition was read: drop those tracks' columns
        still = self._gate.decide(purpose=RECOMMEND, tracks=items).allowed
        keep = np.flatnonzero(still)
        matrix = matrix[:, keep].tocsr()
        kept = [items[i] for i in keep.tolist()]
        _log.info(
            "merge %d x %d, %d non-zeros, consent re-decided: %.1f s wall, %.1f CPU-s",
            *matrix.shape, matrix.nnz, time.perf_counter() - began, time.process_time() - cpu,
        )  # fmt: skip
        model_id: str = self._sinks.publish_model(
            matrix,
            kept,
            actor=job.actor,
            refused=job.refused + len(items) - len(kept),
            plays=int(matrix.sum()),
            model_id=f"rec_{job.created_at:%Y%m%dT%H%M%S}_job{job.id}",  # sorts by time like every model
            key=f"job:{job.id}/train",
        )
        return model_id

    def _merged(self, job_id: int) -> tuple[sp.csr_matrix, list[TrackId], int]:
        """One users x tracks matrix from the partition files, without Python loops over plays."""
        parts = sorted(self.job_dir(job_id).glob("part-*.npz"))
        loaded = [np.load(p) for p in parts]
        items = [TrackId(str(t)) for part in loaded for t in part["tracks"].tolist()]
        names = np.concatenate([part["users"] for part in loaded]) if loaded else np.zeros(0, str)
        users, inverse = np.unique(names, return_inverse=True)
        rows, cols, data = [], [], []
        user_offset = column_offset = 0
        for part in loaded:
            rows.append(inverse[user_offset + part["rows"]])
            cols.append(part["cols"].astype(np.int64) + column_offset)
            data.append(part["counts"])
            user_offset += part["users"].size
            column_offset += part["tracks"].size
        if not loaded:
            return sp.csr_matrix((0, 0), dtype=np.float32), [], 0
        matrix = sp.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(users.size, len(items)),
            dtype=np.float32,
        )
        return matrix, items, int(matrix.sum())

    def clean(self, job_id: int) -> None:
        folder = self.job_dir(job_id)
        for path in folder.glob("*"):
            path.unlink(missing_ok=True)
        if folder.exists():
            folder.rmdir()


def _key(job: Job, task: Task) -> str:
    return f"job:{job.id}/task:{task.seq}"


def _header(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.readline()


def _write_chunk(path: Path, out: Path, *, start: int, end: int) -> None:
    """The header plus every line of ``path`` whose first byte lies in [start, end) of the body."""
    header = _header(path)
    with path.open("rb") as src, out.open("wb") as dst:
        dst.write(header)
        begin = len(header) + start
        if start > 0:  # the line running across ``begin`` belongs to the chunk before
            src.seek(begin - 1)
            src.readline()
        else:
            src.seek(begin)
        stop = len(header) + end
        while src.tell() < stop:
            line = src.readline()
            if not line:
                break
            dst.write(line)


def _read_counts(path: Path) -> tuple[int, int]:
    """Counts an earlier attempt saved; (0, 0) if it died between its commit and saving them."""
    if not path.exists():
        return 0, 0
    imported, rejected = path.read_text().split()
    return int(imported), int(rejected)


def _save_npz(path: Path, **arrays: npt.NDArray[np.generic]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=".npz")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def _save_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_PARTITION_TRACKS",
    "PLAY_KINDS",
    "ImportCounts",
    "PlayKind",
    "PlaySinks",
    "PlayWork",
    "play_kind",
]
