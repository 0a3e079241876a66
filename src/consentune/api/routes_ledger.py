"""The usage ledger: checkpoints, proofs, receipts, audit, tlog-tiles; and the gate for services.

``/v1/ledger/tiles`` is a C2SP tlog-tiles prefix: the same files the
integrator writes to the tiles folder, which any static server or CDN can
serve instead.  Reading them never touches the database.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, Response

from consentune.api.deps import Caller, Service
from consentune.api.routes_catalog import visible_track
from consentune.api.schemas import PURPOSE_PATTERN, AuditOut, CheckpointOut, GateIn, GateOut, ProofOut
from consentune.errors import NotFound
from consentune.ledger.tiles import CHECKPOINT_PATH, TileStore, parse_tile_path
from consentune.types import Purpose, Role, TrackId

router = APIRouter(prefix="/v1", tags=["ledger"])
MAX_RECEIPT_ENTRIES = 10_000  # per receipt: each entry carries its inclusion proof
PUBLIC_CHECKPOINT_MAX_AGE_S = 10.0  # anyone may ask; sign at most one checkpoint per 10 s for them


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@router.get("/ledger/checkpoint", response_model=CheckpointOut)
def checkpoint(service: Service) -> CheckpointOut:
    """Public: the latest signed checkpoint (C2SP signed note)."""
    cp = service.ledger.checkpoint(max_age_s=PUBLIC_CHECKPOINT_MAX_AGE_S)
    return CheckpointOut(
        size=cp.size,
        root_hash=_b64(cp.root_hash),
        note=cp.note,
        verifier_key=service.ledger.verifier_key,
    )


# what parse_tile_path accepts after "tile/": level 0..63 or "entries", the index, an optional width 1..255
_TILE_PATH_PATTERN = (
    r"^([0-9]|[1-5][0-9]|6[0-3]|entries)/(x[0-9]{3}/)*[0-9]{3}(\.p/([1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)
_IMMUTABLE = "public, max-age=31536000, immutable"  # a tile path (with its width) never changes content
_FRESH = "public, max-age=5"  # the checkpoint moves on; tlog-tiles asks for a few seconds at most


def _tile_store(service: Service) -> TileStore:
    if service.ledger.tiles is None:
        raise NotFound("this server does not publish ledger tiles", hint="set CONSENTUNE_LEDGER_TILES_DIR")
    return service.ledger.tiles


@router.get("/ledger/tiles/checkpoint", response_class=PlainTextResponse)
def tiles_checkpoint(service: Service) -> Response:
    """Public: the published signed checkpoint (C2SP tlog-tiles ``<prefix>/checkpoint``)."""
    data = _tile_store(service).read(CHECKPOINT_PATH)
    if data is None:
        raise NotFound("no checkpoint is published yet", hint="the integrator publishes one when the log grows")
    return Response(data, media_type="text/plain; charset=utf-8", headers={"Cache-Control": _FRESH})


@router.get("/ledger/tiles/tile/{path:path}", responses={200: {"content": {"application/octet-stream": {}}}})
def tile(
    path: Annotated[
        str, Path(examples=["0/000", "entries/x001/234.p/7"], json_schema_extra={"pattern": _TILE_PATH_PATTERN})
    ],
    service: Service,
) -> Response:
    """Public: a hash tile ``tile/<L>/<N>[.p/<W>]`` or an entry bundle ``tile/entries/<N>[.p/<W>]``."""
    full_path = f"tile/{path}"
    parse_tile_path(full_path)
    data = _tile_store(service).read(full_path)
    if data is None:
        raise NotFound(f"{full_path} is not published", hint="fetch the checkpoint first; only its tiles exist")
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": _IMMUTABLE})


@router.get("/ledger/public-key", response_class=PlainTextResponse)
def public_key(service: Service) -> str:
    """Public: the C2SP verifier key that signs checkpoints."""
    return service.ledger.verifier_key + "\n"


@router.get("/ledger/proof/consistency", response_model=ProofOut)
def consistency(
    service: Service,
    old: Annotated[int, Query(ge=1, le=2**53 - 1)],
    new: Annotated[int, Query(ge=1, le=2**53 - 1)],
) -> ProofOut:
    """Public: proof that the tree of size ``new`` extends the tree of size ``old``."""
    return ProofOut(proof=[_b64(h) for h in service.ledger.consistency_proof(old, new)])


@router.get("/tracks/{track_id}/receipt", responses={200: {"content": {"application/json": {}}}})
def receipt(
    track_id: str,
    service: Service,
    caller: Caller,
    purpose: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": PURPOSE_PATTERN})] = None,
    after: Annotated[int, Query(ge=-1, le=2**53 - 1)] = -1,
    size: Annotated[int | None, Query(ge=1, le=2**53 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RECEIPT_ENTRIES)] = MAX_RECEIPT_ENTRIES,
    format: Annotated[Literal["v2", "v1"], Query(description="v1: the latest entries, one proof each")] = "v2",
) -> Response:
    """One page of the receipt about the track; verify it offline.

    For the next page pass ``after`` = this page's ``page.next`` and ``size`` =
    its checkpoint size, until ``page.next`` is null.  ``format=v1`` gives the
    older single-file format (the latest ``limit`` entries, one proof each).
    """
    visible_track(service, caller, track_id)
    if format == "v1":
        data = service.ledger.receipt_v1(track=track_id, purpose=purpose, limit=limit)
    else:
        data = service.ledger.receipt(track=track_id, purpose=purpose, after=after, size=size, limit=limit)
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-{track_id}.json"'},
    )


@router.get("/ledger/audit", response_model=AuditOut)
def audit(service: Service, caller: Caller) -> AuditOut:
    caller.require(Role.ADMIN)
    report = service.ledger.audit()
    return AuditOut(
        ok=report.ok,
        size=report.size,
        checkpoints_checked=report.checkpoints_checked,
        nodes_checked=report.nodes_checked,
        problems=report.problems,
    )


@router.post("/gate/decisions", response_model=GateOut)
def gate_decisions(body: GateIn, service: Service, caller: Caller) -> GateOut:
    """For AI pipelines: decide and log a purpose for a batch of tracks."""
    caller.require(Role.SERVICE, Role.ADMIN)
    grant = service.gate.request(
        actor=caller.actor,
        purpose=Purpose(body.purpose),
        tracks=[TrackId(t) for t in body.tracks],
        action=body.action,
    )
    logged = service.ledger.sequences(grant.ledger_ticket)  # the caller asked for indices: integrate now
    return GateOut(
        purpose=grant.purpose,
        action=grant.action,
        allowed=[h.track for h in grant.allowed],
        denied=[{"track": d.track, "reason": d.reason} for d in grant.denied],  # type: ignore[misc]
        ledger_first=logged.start if logged else None,
        ledger_last=logged.stop - 1 if logged else None,
    )
