"""What runs inside a worker: pure functions over one granted batch, on any node.

A worker gets a :class:`TaskPayload` (the job kind, the blob folder as the
node sees it, the gate's public key and a signed grant) and reads audio only
through :class:`~consentune.gate.GrantedReader`.  It has no database
connection and writes nothing: results go back to the driver, which hands
them to the gate.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from consentune.errors import AccessDenied, ConsentuneError, InvalidInput
from consentune.gate import GrantedReader, WorkGrant
from consentune.identify.replica import decode_postings, encode_postings
from consentune.identify.service import track_postings
from consentune.identify.triplets import SAMPLE_RATE
from consentune.organize.descriptors import FEATURE_KIND, analyze
from consentune.types import IDENTIFY, ORGANIZE, Purpose, TrackId

Compute = Callable[[TrackId, npt.NDArray[np.float32], int], bytes]


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of batch work: the purpose it needs, how audio is decoded, what it computes per track.

    ``feature_kind`` names the gate feature results are stored as; None
    means the driver hands them to another sink (the fingerprint index).
    """

    name: str
    purpose: Purpose
    compute: Compute
    mono: bool = False
    target_sr: int | None = None
    feature_kind: str | None = None


@dataclass(frozen=True, slots=True)
class TaskPayload:
    kind: str
    seq: int
    blob_dir: str
    verify_key: bytes
    grant: WorkGrant


@dataclass(frozen=True, slots=True)
class TaskOutput:
    """Per-track results (bytes), refusals and failures of one task, and where and how long it ran."""

    seq: int
    outputs: tuple[tuple[TrackId, bytes], ...]
    refused: tuple[tuple[TrackId, str], ...]
    failed: tuple[tuple[TrackId, str], ...]
    compute_s: float
    cpu_s: float
    audio_s: float
    node: str


def _describe(_track: TrackId, samples: npt.NDArray[np.float32], rate: int) -> bytes:
    return analyze(samples, rate).to_bytes()


def _fingerprint(track: TrackId, samples: npt.NDArray[np.float32], _rate: int) -> bytes:
    return encode_postings(track_postings(track, samples))


KINDS: dict[str, JobKind] = {
    "analyze": JobKind("analyze", ORGANIZE, _describe, feature_kind=FEATURE_KIND),
    "fingerprint": JobKind("fingerprint", IDENTIFY, _fingerprint, mono=True, target_sr=SAMPLE_RATE),
}


def job_kind(name: str) -> JobKind:
    found = KINDS.get(name)
    if found is None:
        raise InvalidInput(f"unknown job kind {name!r}", hint=f"use one of {sorted(KINDS)}")
    return found


def run_task(payload: TaskPayload) -> TaskOutput:
    """Process every track of the payload's grant; a refused or undecodable track never stops the rest."""
    kind = job_kind(payload.kind)
    reader = GrantedReader(blob_dir=Path(payload.blob_dir), verify_key=payload.verify_key)
    started, cpu_started = time.perf_counter(), time.process_time()
    outputs: list[tuple[TrackId, bytes]] = []
    refused: list[tuple[TrackId, str]] = []
    failed: list[tuple[TrackId, str]] = []
    audio_s = 0.0
    # one BLAS thread per worker: the engine already runs one worker per core
    with threadpool_limits(limits=1):
        for track in payload.grant.tracks:
            try:
                samples, rate = reader.decode_audio(
                    payload.grant, track, purpose=kind.purpose, mono=kind.mono, target_sr=kind.target_sr
                )
                outputs.append((track, kind.compute(track, samples, rate)))
                audio_s += samples.shape[0] / rate
            except AccessDenied as exc:
                refused.append((track, exc.message))
            except ConsentuneError as exc:
                failed.append((track, exc.message))
    node = f"{socket.gethostname()}:{os.getpid()}"
    return TaskOutput(
        payload.seq,
        tuple(outputs),
        tuple(refused),
        tuple(failed),
        time.perf_counter() - started,
        time.process_time() - cpu_started,
        audio_s,
        node,
    )


def warm_up(_: int) -> str:
    """Run every kind once on a second of noise (loads the models), so start-up stays out of measurements."""
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 2).astype(np.float32) * 0.1
    with threadpool_limits(limits=1):
        for kind in KINDS.values():
            with contextlib.suppress(ConsentuneError):
                kind.compute(TrackId("warm-up"), noise, SAMPLE_RATE)
    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = [
    "KINDS",
    "JobKind",
    "TaskOutput",
    "TaskPayload",
    "decode_postings",
    "encode_postings",
    "job_kind",
    "run_task",
    "warm_up",
]
