"""Request dependencies: the wired service and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from consentune.auth import Principal
from consentune.service import Consentune


def get_service(request: Request) -> Consentune:
    service: Consentune = request.app.state.consentune
    return service


def get_principal(
    service: Annotated[Consentune, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    secret = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        secret = authorization[7:]
    return service.keys.authenticate(secret)


Service = Annotated[Consentune, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_principal)]
