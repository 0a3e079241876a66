"""Sign-up verification of listener accounts (``shield.verify``): proof of work, e-mail link, platform hook.

Every route is behind the shield's guard.  The account is named by its
token (``Authorization: Bearer ctl_…``), except the e-mail link, whose
sealed token names it.  An unverified account can listen but stays a
newcomer: never trusted, always inside the newcomer budgets.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field

from consentune.api.deps import Service
from consentune.api.routes_listen import _event, _guard, _json, _timed, client_of
from consentune.api.schemas import storable
from consentune.errors import AccessDenied, ConfigError
from consentune.service import Consentune
from consentune.shield.verify import SignupVerification

router = APIRouter(tags=["listen"])
Text = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(storable)]


class WorkIn(BaseModel):
    token: Text
    nonces: list[Annotated[str, Field(min_length=1, max_length=64), AfterValidator(storable)]] = Field(max_length=64)


class EmailIn(BaseModel):
    email: Annotated[str, Field(min_length=3, max_length=254), AfterValidator(storable)]


class HookIn(BaseModel):
    evidence: Text


def _verification(service: Consentune) -> SignupVerification:
    if service.verification is None:
        raise ConfigError("sign-up verification is not configured", hint="set CONSENTUNE_SIGNUP_VERIFY")
    return service.verification


def _account(service: Consentune, authorization: str | None) -> str:
    """The account a listener token opens (the store keeps only the token's SHA-256, as ListenerDesk does)."""
    token = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else ""
    found = service.store.listener_account(hashlib.sha256(token.encode()).hexdigest()) if token else None
    if found is None:
        raise AccessDenied("unknown listener account token", hint="send Authorization: Bearer <account token>")
    return found[0]


@router.post("/v1/listen/accounts/verify/puzzle")
def puzzle(request: Request, service: Service, authorization: Annotated[str | None, Header()] = None) -> Response:
    """A proof-of-work puzzle for this account: find ``solutions`` distinct nonces whose
    ``scrypt(nonce, salt, N=n, r=r, p=1, dkLen=32)`` has ``bits`` leading zero bits."""
    client = client_of(request, service)
    _guard(request, service, _event(client, "page"))
    found = _verification(service).puzzle(account_id=_account(service, authorization), now=client.now)
    p = found.params
    body = {"token": found.token, "salt": found.salt, "n": p.n, "r": p.r, "p": 1, "dklen": 32,
            "solutions": p.solutions, "bits": p.bits, "expires_at": found.expires_at}  # fmt: skip
    return _json(request, body, headers={"Cache-Control": "no-store"})


@router.post("/v1/listen/accounts/verify/pow", status_code=204)
def solve_puzzle(
    body: WorkIn, request: Request, service: Service, authorization: Annotated[str | None, Header()] = None
) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "challenge"))
    _verification(service).solve_puzzle(
        account_id=_account(service, authorization), token=body.token, nonces=body.nonces, now=client.now
    )
    return _timed(request, Response(status_code=204))


@router.post("/v1/listen/accounts/verify/email/send", status_code=202)
def send_email(
    body: EmailIn, request: Request, service: Service, authorization: Annotated[str | None, Header()] = None
) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "signup"))
    _verification(service).send_email(account_id=_account(service, authorization), email=body.email, now=client.now)
    return _timed(request, Response(status_code=202))


@router.get("/v1/listen/accounts/verify/email")
def confirm_email(
    request: Request, service: Service, token: Annotated[str, Query(min_length=1, max_length=2048)]
) -> Response:
    """The link in the mail: the sealed token names the account and the mailbox."""
    client = client_of(request, service)
    _guard(request, service, _event(client, "page"))
    _verification(service).confirm_email(token=token, now=client.now)
    return _json(request, {"verified": True}, headers={"Cache-Control": "no-store"})


@router.post("/v1/listen/accounts/verify/hook", status_code=204)
def check_hook(
    body: HookIn, request: Request, service: Service, authorization: Annotated[str | None, Header()] = None
) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "signup"))
    _verification(service).check_hook(account_id=_account(service, authorization), evidence=body.evidence,
                                      now=client.now)  # fmt: skip
    return _timed(request, Response(status_code=204))
