"""The usage ledger: checkpoints, proofs, receipts, audit; and the gate for services."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from consentune.api.deps import Caller, Service
from consentune.api.routes_catalog import visible_track
from consentune.api.schemas import AuditOut, CheckpointOut, GateIn, GateOut, ProofOut
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
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RECEIPT_ENTRIES)] = MAX_RECEIPT_ENTRIES,
) -> Response:
    """A receipt of the latest ``limit`` ledger entries about the track; verify it offline."""
    visible_track(service, caller, track_id)
    data = service.ledger.receipt(track=track_id, purpose=purpose, limit=limit)
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
    logged = grant.ledger_range
    return GateOut(
        purpose=grant.purpose,
        action=grant.action,
        allowed=[h.track for h in grant.allowed],
        denied=[{"track": d.track, "reason": d.reason} for d in grant.denied],  # type: ignore[misc]
        ledger_first=logged.start if logged else None,
        ledger_last=logged.stop - 1 if logged else None,
    )
