"""Dashboard pages: server-rendered HTML over the same services and authorization as the JSON API."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from consentune.api.errors import status_for
from consentune.auth import Principal
from consentune.claims import ClaimPolicy
from consentune.errors import (
    AccessDenied,
    AuthenticationFailed,
    Conflict,
    ConsentuneError,
    InvalidInput,
    VerificationFailed,
)
from consentune.ledger import verify_receipt
from consentune.ledger.entry import MAX_SAFE_INT
from consentune.service import Consentune
from consentune.types import ArtistId, Purpose, Role, TrackId, is_wellformed_purpose
from consentune.web import capabilities, plots, views, words
from consentune.web.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Session,
    csrf_ok,
    csrf_token,
    new_nonce,
    seal,
    unseal,
)

PREFIX = "/dashboard"
TIMELINE_LIMIT = 200
STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: datetime | float | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, float | int) else value.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


_env = Environment(loader=PackageLoader("consentune.web", "templates"), autoescape=True, undefined=StrictUndefined)
_env.filters["when"] = _when
_env.filters["entry_time"] = lambda t: f"{t[:10]} {t[11:19]} UTC"
_env.filters["purpose_title"] = words.purpose_title
_env.filters["decision_sentence"] = words.decision_sentence
_env.filters["action_words"] = words.action_words
_env.filters["job_title"] = words.job_title
_env.filters["job_state"] = words.job_state


class _SignInFirst(Exception):
    """No valid session: send the browser to the sign-in page."""


def _service(request: Request) -> Consentune:
    service: Consentune = request.app.state.consentune
    return service


def _session(request: Request) -> Session | None:
    return unseal(_service(request).session_key, request.cookies.get(SESSION_COOKIE), now=time.time())


def session_principal(service: Consentune, cookie: str | None, token: str | None) -> Principal | None:
    """For the JSON API: the principal of a dashboard session, only with its CSRF token in a header."""
    session = unseal(service.session_key, cookie, now=time.time())
    if session is None or not csrf_ok(service.session_key, session.nonce, token):
        return None
    return service.keys.authenticate_digest(session.key_digest)


def _signed_in(request: Request) -> tuple[Principal, Session]:
    session = _session(request)
    if session is None:
        raise _SignInFirst
    try:
        return _service(request).keys.authenticate_digest(session.key_digest), session
    except AuthenticationFailed:  # the key was revoked: the session ends with it
        raise _SignInFirst from None


def _admin_post(request: Request, csrf_token: str) -> Principal:
    """The signed-in operator behind a console form (session, CSRF token and role checked)."""
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    principal.require(Role.ADMIN)
    return principal


def _render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    session = _session(request)
    principal: Principal | None = context.pop("principal", None)
    names = _ArtistNames(_service(request))
    me = principal.artist_id if principal is not None else None
    html = _env.get_template(template).render(
        request=request,
        principal=principal,
        my_name=names.get(me, "") if me else "",
        who=lambda actor: words.actor_words(actor, names=names, me=me),
        csrf=csrf_token(_service(request).session_key, session.nonce) if session else "",
        prefix=PREFIX,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


class _ArtistNames(dict[str, str]):
    """Artist names looked up on first use, one per artist a page mentions (never the whole table)."""

    def __init__(self, service: Consentune) -> None:
        super().__init__()
        self._service = service

    def __missing__(self, artist_id: str) -> str:
        try:
            name = self._service.catalog.artist(artist_id).name
        except ConsentuneError:
            name = "another artist"
        self[artist_id] = name
        return name

    def get(self, artist_id: str, default: str = "") -> str:  # type: ignore[override]
        return self[artist_id]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


P = ParamSpec("P")


def page(handler: Callable[P, Response]) -> Callable[P, Response]:
    """Turn errors into pages: sign-in redirect, or an error page with the API's status and hint."""

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs["request"]
        assert isinstance(request, Request)
        try:
            return handler(*args, **kwargs)
        except _SignInFirst:
            return _redirect(f"{PREFIX}/sign-in")
        except ConsentuneError as exc:
            principal = None
            with contextlib.suppress(_SignInFirst):
                principal, _ = _signed_in(request)
            return _render(request, "error.html", status=status_for(exc), error=exc, principal=principal)

    return wrapper


def _check_post(request: Request, session: Session, token: str) -> None:
    """CSRF: the form's token must come from this session, and never from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise AccessDenied("cross-site form posts are refused", hint="use the dashboard's own pages")
    if not csrf_ok(_service(request).session_key, session.nonce, token):
        raise AccessDenied("the form's security token is missing or stale", hint="reload the page and try again")


# -- sign-in ------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
@page
def home(request: Request) -> Response:
    principal, _ = _signed_in(request)
    if principal.role is Role.ADMIN:
        return _redirect(f"{PREFIX}/operator")
    if principal.role is Role.ARTIST and principal.artist_id:
        return _redirect(f"{PREFIX}/artists/{principal.artist_id}")
    raise AccessDenied("the dashboard is for artists and operators", hint="sign in with an artist or admin key")


def _sign_in_page(request: Request, *, error: str = "", status: int = 200, notice: str = "") -> HTMLResponse:
    nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    response = _render(
        request,
        "sign_in.html",
        status=status,
        login_csrf=csrf_token(_service(request).session_key, f"login:{nonce}"),
        error=error,
        notice=notice,
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, signed_out: bool = False) -> Response:
    if _session(request) is not None:
        try:
            _signed_in(request)
            return _redirect(PREFIX)
        except _SignInFirst:
            pass
    return _sign_in_page(request, notice="You are signed out." if signed_out else "")


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request, api_key: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = ""
) -> Response:
    service = _service(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not csrf_ok(service.session_key, f"login:{nonce}" if nonce else None, csrf_token):
        return _sign_in_page(request, error="The sign-in form expired; please try again.", status=400)
    try:
        principal = service.keys.authenticate(api_key)
    except AuthenticationFailed:
        return _sign_in_page(request, error="That API key is unknown or revoked.", status=401)
    if principal.role is Role.SERVICE:
        return _sign_in_page(request, error="Service keys cannot sign in; use an artist or admin key.", status=403)
    session = Session(service.keys.digest(api_key), new_nonce(), int(time.time()))
    response = _redirect(PREFIX)
    response.set_cookie(
        SESSION_COOKIE,
        seal(service.session_key, session),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/sign-out")
@page
def sign_out(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    _principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    response = _redirect(f"{PREFIX}/sign-in?signed_out=true")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- artist pages -------------------------------------------------------------
@router.get("/artists/{artist_id}", response_class=HTMLResponse)
@page
def artist_page(
    request: Request, artist_id: str, saved: str = "", unchanged: str = "", accepted: int = 0, claim_done: str = ""
) -> Response:
    principal, _ = _signed_in(request)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    version, summary, rows = views.consent_rows(service, artist)
    tracks = service.catalog.tracks(artist=artist, limit=1000)
    paths = capabilities.served_paths(request.app)
    usage = views.usage_summary(service, artist)
    return _render(
        request,
        "artist.html",
        principal=principal,
        artist=artist,
        tracks=tracks,
        titles={t.id: t.title for t in tracks},
        terms_version=version,
        terms_summary=summary,
        rows=rows,
        saved=saved,
        unchanged=unchanged,
        accepted=accepted == version,
        tomorrow=(datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        offer=views.terms_offer(service, artist),
        sections=[(c, on, c.url()) for c, on in capabilities.sections(paths, scope="artist")],
        claims=views.claim_cards(service, principal) if principal.role is Role.ARTIST else [],
        claim_policy=service.claims.policy_of(ArtistId(artist.id)).value,
        claim_done=claim_done,
        usage=usage,
        usage_chart=plots.use_bars(
            chart_id="chart-uses",
            title=f"Uses and refusals per purpose, {usage.first_day:%d %b} to {usage.last_day:%d %b}",
            rows=[(words.purpose_title(p), used, refused) for p, used, refused in usage.per_purpose],
        )
        if usage.per_purpose
        else "",
    )


@router.post("/artists/{artist_id}/terms")
@page
def accept_terms(
    request: Request, artist_id: str, version: Annotated[int, Form()], csrf_token: Annotated[str, Form()] = ""
) -> Response:
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    service.consent.accept_terms(artist, version=version, actor=principal.actor)
    return _redirect(f"{PREFIX}/artists/{artist.id}?accepted={version}")


@router.post("/artists/{artist_id}/consent")
@page
def set_consent(
    request: Request,
    artist_id: str,
    purpose: Annotated[str, Form()],
    choice: Annotated[str, Form()] = "",
    track_id: Annotated[str, Form()] = "",
    ends: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    until_current: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    if choice not in ("on", "off"):
        raise InvalidInput(f"choice {choice!r} is neither on nor off", hint="pick On or Off, then save")
    track = views.track_for(service, principal, track_id) if track_id else None
    if track is not None:
        service.consent.set(
            artist, purpose=Purpose(purpose), allow=choice == "on", actor=principal.actor, track=TrackId(track.id)
        )
        return _redirect(f"{PREFIX}/tracks/{track.id}?saved={purpose}#saved")
    valid_until = _ends(ends, until, until_current)
    anchor = "#saved"  # the confirmation sits inside the purpose's card
    if views.artist_choice_unchanged(service, artist, Purpose(purpose), allow=choice == "on", until=valid_until):
        return _redirect(f"{PREFIX}/artists/{artist.id}?unchanged={purpose}{anchor}")
    service.consent.set(
        artist, purpose=Purpose(purpose), allow=choice == "on", actor=principal.actor, valid_until=valid_until
    )
    return _redirect(f"{PREFIX}/artists/{artist.id}?saved={purpose}{anchor}")


@router.post("/artists/{artist_id}/consent/clear")
@page
def clear_track_consent(
    request: Request,
    artist_id: str,
    purpose: Annotated[str, Form()],
    track_id: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A track stops having its own choice and follows the all-tracks choice again."""
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    track = views.track_for(service, principal, track_id)
    service.consent.clear(artist, purpose=Purpose(purpose), track=TrackId(track.id), actor=principal.actor)
    return _redirect(f"{PREFIX}/tracks/{track.id}?saved={purpose}#saved")


def _ends(ends: str, until: str, until_current: str) -> datetime | None:
    """The end of an all-tracks choice from the form: never, or a day (00:00 UTC).

    ``ends`` is ``never`` or ``on``; a client that sends no ``ends`` means "on" when it sends a day.

    A day equal to the current end date's day keeps the current end exactly,
    so saving a form without touching it never moves or drops an end date.
    """
    ends = ends or ("on" if until else "never")
    if ends == "never":
        return None
    if ends != "on":
        raise InvalidInput(f"ends {ends[:20]!r} is neither never nor on", hint="pick 'No end date' or a date")
    if not until:
        raise InvalidInput("no end date was given", hint="pick a date, or choose 'No end date'")
    if until_current:
        try:
            current = datetime.fromisoformat(until_current)
        except ValueError:
            current = None
        if current is not None and current.tzinfo is not None and current.date().isoformat() == until:
            return current
    return _until(until)


@router.post("/claims/{claim_id}/resolve")
@page
def resolve_claim(
    request: Request, claim_id: int, outcome: Annotated[str, Form()], csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """The original artist (or an operator) upholds a claim or releases the copy."""
    principal, as_artist = _claim_caller(request, csrf_token)
    claim = _service(request).claims.resolve(claim_id, outcome=outcome, actor=principal.actor, as_artist=as_artist)
    return _after_claim(principal, claim.status.value)


@router.post("/claims/{claim_id}/dispute")
@page
def dispute_claim(
    request: Request, claim_id: int, reason: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """The uploader of a claimed copy says why the claim is wrong."""
    principal, as_artist = _claim_caller(request, csrf_token)
    claim = _service(request).claims.dispute(claim_id, reason=reason, actor=principal.actor, as_artist=as_artist)
    return _after_claim(principal, claim.status.value)


@router.post("/artists/{artist_id}/claim-policy")
@page
def set_claim_policy(
    request: Request, artist_id: str, policy: Annotated[str, Form()], csrf_token: Annotated[str, Form()] = ""
) -> Response:
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    if policy not in ("block", "hold", "allow"):
        raise InvalidInput(f"policy {policy[:20]!r} is not block, hold or allow", hint="pick one of the three")
    service.claims.set_policy(ArtistId(artist.id), ClaimPolicy(policy), actor=principal.actor)
    return _redirect(f"{PREFIX}/artists/{artist.id}?claim_done=policy#claims")


def _claim_caller(request: Request, csrf_token: str) -> tuple[Principal, ArtistId | None]:
    """The signed-in caller of a claim form, and the artist they act as (None: an operator)."""
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    return principal, None if principal.role is Role.ADMIN else principal.artist_id


def _after_claim(principal: Principal, status: str) -> Response:
    if principal.role is Role.ADMIN:
        return _redirect(f"{PREFIX}/operator?claim_done={status}#claims")
    return _redirect(f"{PREFIX}/artists/{principal.artist_id}?claim_done={status}#claims")


def _check_purpose(purpose: str) -> None:
    if purpose and not is_wellformed_purpose(purpose):
        raise InvalidInput(f"purpose {purpose[:40]!r} is not well-formed", hint="pick a purpose from the list")


def _until(text: str) -> datetime | None:
    """An optional end date from a form (YYYY-MM-DD, 00:00 UTC); it must lie in the future."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"until {text[:20]!r} is not a date", hint="give a date as YYYY-MM-DD or leave it empty"
        ) from None
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise InvalidInput(f"until {day} is not in the future", hint="pick a later date or leave it empty")
    return moment


def _track_page(request: Request, track_id: str, *, purpose: str, saved: str = "", **extra: Any) -> Response:
    principal, _ = _signed_in(request)
    service = _service(request)
    track = views.track_for(service, principal, track_id)
    artist = service.catalog.artist(track.artist_id)
    purposes = views.track_purposes(service, artist, track)
    known = {p.purpose for p in purposes}
    chosen = purpose if purpose in known else ""
    paths = capabilities.served_paths(request.app)
    return _render(
        request,
        "track.html",
        principal=principal,
        artist=artist,
        track=track,
        purposes=purposes,
        purpose=chosen,
        entries=views.timeline(service, track, purpose=chosen or None, limit=TIMELINE_LIMIT),
        limit=TIMELINE_LIMIT,
        saved=next((p for p in purposes if p.purpose == saved), None),
        verifier_key=service.ledger.verifier_key,
        sections=[(c, on, c.url(track_id=track.id)) for c, on in capabilities.sections(paths, scope="track")],
        claims=views.claim_cards(service, principal, track=track),
        mix=views.mix_tracklist(service, track),
        **{"verified": None, "verify_error": None, **extra},
    )


@router.get("/tracks/{track_id}", response_class=HTMLResponse)
@page
def track_page(request: Request, track_id: str, purpose: str = "", saved: str = "") -> Response:
    return _track_page(request, track_id, purpose=purpose, saved=saved)


@router.get("/tracks/{track_id}/receipt")
@page
def download_receipt(
    request: Request, track_id: str, purpose: str = "", format: str = "v1", after: int = -1, size: int = 0
) -> Response:
    """v1 (the latest entries, one file) by default; ``format=v2`` gives one page of the complete receipt,
    the next with ``after`` = its ``page.next`` and ``size`` = its checkpoint size (the in-browser verifier)."""
    principal, _ = _signed_in(request)
    service = _service(request)
    track = views.track_for(service, principal, track_id)
    _check_purpose(purpose)
    if format not in ("v1", "v2") or not -1 <= after <= MAX_SAFE_INT or not 0 <= size <= MAX_SAFE_INT:
        raise InvalidInput(
            f"receipt format {format!r}, after {after}, size {size}", hint="format v1 or v2; after >= -1"
        )
    if format == "v2":
        data = service.ledger.receipt(track=track.id, purpose=purpose or None, after=after, size=size or None)
    else:
        data = service.ledger.receipt_v1(track=track.id, purpose=purpose or None)
    name = f"receipt-{track.id}{'-' + purpose if purpose else ''}.json"
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.post("/tracks/{track_id}/verify", response_class=HTMLResponse)
@page
def verify(
    request: Request, track_id: str, purpose: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Build a receipt and check it on the server against the signed checkpoint and the public key."""
    principal, session = _signed_in(request)
    _check_post(request, session, csrf_token)
    service = _service(request)
    track = views.track_for(service, principal, track_id)
    _check_purpose(purpose)
    data = service.ledger.receipt_v1(track=track.id, purpose=purpose or None)
    try:
        verified = verify_receipt(data, verifier_key=service.ledger.verifier_key)
    except VerificationFailed as exc:
        return _track_page(request, track_id, purpose=purpose, verify_error=exc.message)
    return _track_page(request, track_id, purpose=purpose, verified=verified)


@router.get("/artists/{artist_id}/reach", response_class=HTMLResponse)
@page
def reach_page(request: Request, artist_id: str, after: int = -1) -> Response:
    principal, _ = _signed_in(request)
    service = _service(request)
    artist = views.dashboard_artist(service, principal, artist_id)
    data = views.reach(service, principal, artist, after=max(after, -1))
    charts = {
        name: plots.bar_chart(chart_id=f"chart-{name}", title=title, days=data.days, values=values, unit=unit)
        for name, title, values, unit in (
            ("plays", "Plays per day", data.plays, "plays"),
            ("listeners", "Listeners per day", data.listeners, "listeners"),
            ("impressions", "Recommendation impressions per day", data.impressions, "impressions"),
        )
    }
    return _render(request, "reach.html", principal=principal, artist=artist, reach=data, charts=charts)


# -- operator console ---------------------------------------------------------
@router.get("/operator", response_class=HTMLResponse)
@page
def operator_page(request: Request, after: str = "", claim_done: str = "") -> Response:
    principal, _ = _signed_in(request)
    overview = views.operator_overview(_service(request), principal, after=after[:200])
    paths = capabilities.served_paths(request.app)
    return _render(
        request,
        "operator.html",
        principal=principal,
        o=overview,
        audit=getattr(request.app.state, "dashboard_audit", None),
        sections=[(c, on, c.url()) for c, on in capabilities.sections(paths, scope="operator")],
        claims=views.claim_cards(_service(request), principal),
        claim_done=claim_done,
    )


@router.post("/operator/audit")
@page
def run_audit(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    _admin_post(request, csrf_token)
    report = _service(request).ledger.audit()
    request.app.state.dashboard_audit = (datetime.now(UTC), report)
    return _redirect(f"{PREFIX}/operator#ledger")


@router.post("/operator/shield/{record_id}/lift")
@page
def lift_block(request: Request, record_id: int, csrf_token: Annotated[str, Form()] = "") -> Response:
    principal = _admin_post(request, csrf_token)
    _service(request).listen.guard.lift(record_id, by=principal.actor, now=time.time())
    return _redirect(f"{PREFIX}/operator#shield")


# -- batch jobs -----------------------------------------------------------------
@router.get("/operator/jobs", response_class=HTMLResponse)
@page
def jobs_page(request: Request, notice: str = "") -> Response:
    principal, _ = _signed_in(request)
    principal.require(Role.ADMIN)
    found = _service(request).jobs.list(limit=100)
    return _render(request, "jobs.html", principal=principal, jobs=found, notice=notice[:200])


@router.get("/operator/jobs/{job_id}", response_class=HTMLResponse)
@page
def job_page(request: Request, job_id: int, notice: str = "") -> Response:
    principal, _ = _signed_in(request)
    principal.require(Role.ADMIN)
    job = _service(request).jobs.get(job_id)
    resumable = _service(request).jobs.resumable(job_id)
    return _render(request, "job.html", principal=principal, job=job, resumable=resumable, notice=notice[:200])


@router.post("/operator/jobs/{job_id}/cancel")
@page
def cancel_job(request: Request, job_id: int, csrf_token: Annotated[str, Form()] = "") -> Response:
    _admin_post(request, csrf_token)
    _service(request).jobs.cancel(job_id)
    return _redirect(f"{PREFIX}/operator/jobs/{job_id}?notice=cancelled")


@router.post("/operator/jobs/{job_id}/resume")
@page
def resume_job(request: Request, job_id: int, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Start a driver for the job in the background: the same `consentune jobs resume` an operator would run."""
    _admin_post(request, csrf_token)
    service = _service(request)
    if not service.jobs.resumable(job_id):
        raise Conflict(f"job {job_id} cannot be resumed now", hint="it is finished, cancelled or still running")
    settings = service.settings
    env = {**os.environ, "CONSENTUNE_HOME": str(settings.home), "CONSENTUNE_DATABASE_URL": settings.database_url}
    command = [sys.executable, "-m", "consentune", "jobs", "resume", str(job_id)]
    subprocess.Popen(
        command, env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return _redirect(f"{PREFIX}/operator/jobs/{job_id}?notice=resuming")


__all__ = ["PREFIX", "STATIC_DIR", "router", "session_principal"]
