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
    request: Request,
    service: Annotated[Consentune, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_csrf_token: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    secret = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        secret = authorization[7:]
    if secret is None and x_csrf_token:
        # the dashboard's own pages call the API with their session cookie and its CSRF token
        from consentune.web import SESSION_COOKIE, session_principal

        principal = session_principal(service, request.cookies.get(SESSION_COOKIE), x_csrf_token)
        if principal is not None:
            return principal
    return service.keys.authenticate(secret)


Service = Annotated[Consentune, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_principal)]
