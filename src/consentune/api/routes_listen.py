"""Listener-facing endpoints, all behind the shield: catalogue pages, sessions, plays, encrypted streams.

The session credential travels only in the ``ctn_session`` cookie or the
``X-Session-Token`` header, never in a URL; a stream URL alone opens nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field

from consentune.api.deps import Service
from consentune.api.schemas import MAX_INT, TrackRef, storable
from consentune.errors import (
    AccessDenied,
    Blocked,
    ChallengeRequired,
    InvalidInput,
    NotFound,
    PreviewOnly,
    RangeNotSatisfiable,
    Throttled,
)
from consentune.ports import ListenerSession
from consentune.service import Consentune
from consentune.shield.detect import AccessEvent
from consentune.shield.guard import Outcome
from consentune.shield.listen import session_id_of
from consentune.types import Track

router = APIRouter(tags=["listen"])
SESSION_COOKIE = "ctn_session"
SESSION_HEADER = "x-session-token"
SIM_TIME_HEADER = "x-consentune-sim-time"
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Client:
    """Who is asking.  ``session_id`` is the public id derived from ``credential`` (never shown or logged)."""

    address: str
    user_agent: str
    session_id: str | None
    now: float
    credential: str | None = field(default=None, repr=False)


def client_of(request: Request, service: Consentune) -> Client:
    """Who is asking: address (forwarded headers only from trusted proxies), agent, session, clock."""
    started = time.perf_counter()
    peer = request.client.host if request.client else "0.0.0.0"
    address = service.listen.client_address(
        peer=peer,
        x_forwarded_for=request.headers.get("x-forwarded-for"),
        forwarded=request.headers.get("forwarded"),
    )
    credential = request.headers.get(SESSION_HEADER) or request.cookies.get(SESSION_COOKIE)
    now = _clock(request, service, peer)
    request.state.shield_s = time.perf_counter() - started
    session_id = session_id_of(credential) if credential else None
    return Client(address, request.headers.get("user-agent", ""), session_id, now, credential)


def _clock(request: Request, service: Consentune, peer: str) -> float:
    """Wall time, or the benchmark's simulated time: only in bench mode (see Settings) and only from loopback."""
    sim = request.headers.get(SIM_TIME_HEADER)
    if sim is None or not service.settings.shield_sim_clock:
        return time.time()
    if not _loopback(peer):
        raise InvalidInput(
            f"{SIM_TIME_HEADER} is accepted from loopback clients only, not {peer}",
            hint="the simulated clock is for local benchmarks; drop the header",
        )
    try:
        return float(sim)
    except ValueError:
        raise InvalidInput(f"X-Consentune-Sim-Time {sim!r} is not a number", hint="send epoch seconds") from None


def _loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def _guard(request: Request, service: Consentune, event: AccessEvent, *, passed_at: float | None = None) -> None:
    """Ask the shield about ``event``; raise what the client must be told (no evidence, no thresholds)."""
    started = time.perf_counter()
    outcome: Outcome = service.listen.guard.check(event, challenge_passed_at=passed_at)
    request.state.shield_s = getattr(request.state, "shield_s", 0.0) + time.perf_counter() - started
    quote = f" (reference {outcome.reference})" if outcome.reference is not None else ""
    if outcome.action == "throttle":
        raise Throttled(outcome.message, retry_after_s=outcome.retry_after_s, hint="slow down and retry later")
    if outcome.action == "block":
        raise Blocked(f"blocked: {outcome.message}{quote}", hint="contact the platform operator, quoting the reference")
    if outcome.action == "challenge" and outcome.challenge is not None:
        c = outcome.challenge
        raise ChallengeRequired(
            f"challenge required: {outcome.message}{quote}",
            challenge={
                "token": c.token,
                "salt": c.salt,
                "difficulty_bits": c.difficulty_bits,
                "expires_at": c.expires_at,
            },
            hint="find a nonce so sha256(salt + nonce) has difficulty_bits leading zero bits; "
            "POST it to /v1/listen/challenge",
        )


def _timed(request: Request, response: Response) -> Response:
    response.headers["Server-Timing"] = f"shield;dur={getattr(request.state, 'shield_s', 0.0) * 1000:.3f}"
    return response


def _json(request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _timed(request, JSONResponse(body, status, headers=headers))


def _event(client: Client, kind: str, **extra: Any) -> AccessEvent:
    return AccessEvent(at=client.now, kind=kind, session_id=client.session_id or "-", address=client.address,
                       user_agent=client.user_agent, **extra)  # fmt: skip


def shield_page(request: Request, service: Consentune) -> None:
    """Put a public page that is not about one listener (robots.txt, TDMRep, XMP sidecars) behind the guard."""
    _guard(request, service, _event(client_of(request, service), "page"))


def _session(service: Consentune, client: Client) -> ListenerSession:
    return service.listen.session(client.credential)


@contextlib.contextmanager
def _probing(request: Request, service: Consentune, client: Client) -> Iterator[None]:
    """A request refused before its own guard check (unknown session, track or stream token) still meets the
    guard as a page view, so probing costs what browsing costs."""
    try:
        yield
    except (InvalidInput, NotFound, AccessDenied):
        _guard(request, service, _event(client, "page"))
        raise


def _secure_cookie(request: Request, service: Consentune) -> bool:
    """``Secure`` unless configured off, or (``auto``) plain http to a loopback host such as the local demo."""
    setting = service.settings.cookie_secure
    if setting != "auto":
        return setting == "1"
    host = (request.url.hostname or "").strip("[]")
    return request.url.scheme == "https" or not (host == "localhost" or _loopback(host))


class ProgressIn(BaseModel):
    """Where the player is in a track (seconds) and what just happened: ``tick`` while playing (every ~15 s),
    ``seek`` after the listener jumped, ``pause``, and ``resume`` (also after playing the track again to
    continue where it stopped).  A seek or resume starts a new segment at ``position_s``."""

    track_id: TrackRef
    position_s: float = Field(ge=0, le=1e9)
    event: Literal["tick", "seek", "pause", "resume"] = "tick"


class ChallengeIn(BaseModel):
    token: Annotated[str, Field(max_length=1024), AfterValidator(storable)]
    nonce: Annotated[str, Field(max_length=128), AfterValidator(storable)]


@router.post("/v1/listen/accounts", status_code=201)
def create_account(request: Request, service: Service) -> Response:
    """Listener sign-up (cheap on purpose; the shield watches bursts of them)."""
    client = client_of(request, service)
    _guard(request, service, _event(client, "signup"))
    account_id, token = service.listen.create_account(address=client.address, now=client.now)
    body: dict[str, Any] = {"account_id": account_id, "token": token}
    if service.verification is not None:  # identity cost: what the account must pass to ever be established
        service.verification.mark_at_signup(account_id=account_id, now=client.now)
        body["verify_by"] = [m for m in service.verification.methods if m != "none"]
    return _json(request, body, 201)


@router.post("/v1/listen/sessions", status_code=201)
def create_session(
    request: Request, service: Service, authorization: Annotated[str | None, Header()] = None
) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "session"))
    token = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
    credential, session_id, account_id = service.listen.create_session(
        account_token=token, address=client.address, user_agent=client.user_agent, now=client.now
    )
    body = {"session_id": session_id, "session_token": credential, "account_id": account_id}
    response = _json(request, body, 201, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SESSION_COOKIE, credential, httponly=True, samesite="lax", secure=_secure_cookie(request, service)
    )
    return response


@router.get("/v1/listen/catalog")
def catalog(
    request: Request,
    service: Service,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "page", catalog_index=offset))
    rows, next_offset = service.listen.catalog_page(offset=offset, limit=limit)
    more = (
        {"Link": f'</v1/listen/catalog?offset={next_offset}&limit={limit}>; rel="next"'}
        if next_offset is not None
        else None
    )
    return _json(request, [_public(t, i, service) for i, t in rows], headers=more)


@router.get("/v1/listen/search")
def search(request: Request, service: Service, q: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    client = client_of(request, service)
    _guard(request, service, _event(client, "search"))
    return _json(request, [_public(t, i, service) for i, t in service.listen.search(q, limit=20)])


@router.get("/v1/listen/tracks/{track_id}")
def track_page(track_id: str, request: Request, service: Service) -> Response:
    client = client_of(request, service)
    with _probing(request, service, client):
        index, track = service.listen.indexed(track_id)
    _guard(request, service, _event(client, "page", track_id=track.id, catalog_index=index))
    return _json(request, _public(track, index, service), headers=service.listen.policy_headers(track.id))


@router.post("/v1/listen/tracks/{track_id}/play")
def play(
    track_id: str,
    request: Request,
    service: Service,
    resume: Annotated[str | None, Query(max_length=4096, pattern=r"^[A-Za-z0-9_\-/]+$")] = None,
) -> Response:
    """Ask to play a track: the shield decides, the gate logs the stream, a signed URL comes back.

    ``resume`` is the stream URL (or its token) of this track's play whose URL expired during a pause:
    when it is still the listener's latest play, the new URL continues it, so the real-time limit does
    not start again from zero (the answer says ``"resumed": true``)."""
    client = client_of(request, service)
    with _probing(request, service, client):
        session = _session(service, client)
        index, track = service.listen.indexed(track_id)
    limit_s = service.listen.audio_limit(account_id=session.account_id)  # before the shield: not a play
    event = _event(client, "play", account_id=session.account_id, account_created_at=session.account_created_at,
                   account_established_at=session.account_established_at,
                   account_verified=_verified(session),
                   track_id=track.id, catalog_index=index, duration_s=track.duration_s,
                   artist_id=track.artist_id)  # fmt: skip
    _guard(request, service, event, passed_at=session.challenge_passed_at)
    if service.newcomer_budget is not None:  # the lead a play may fetch at once counts for newcomers
        service.newcomer_budget.on_play(session, address=client.address, track=track.id,
                                        duration_s=track.duration_s, now=client.now)  # fmt: skip
    token, expires_at, resumed = service.listen.start_play(
        session_id=session.id, account_id=session.account_id, track=track, now=client.now, limit_s=limit_s,
        resume=None if resume is None else resume.rsplit("/", 1)[-1],
    )  # fmt: skip
    answer = {"stream_url": f"/stream/{token}", "expires_at": expires_at, "duration_s": track.duration_s,
              "resumed": resumed}  # fmt: skip
    return _json(request, {**answer, "preview_s": limit_s} if limit_s is not None else answer)


@router.get("/stream/{token}")
def stream(
    token: str, request: Request, service: Service, range_: Annotated[str | None, Header(alias="range")] = None
) -> Response:
    """Audio bytes for a signed, session-bound URL; Range works; never faster than real time + buffer."""
    client = client_of(request, service)
    with _probing(request, service, client):
        session = _session(service, client)
        track, grant = service.listen.verify_stream(
            token, session_id=session.id, account_id=session.account_id, now=client.now
        )
    body = service.listen.stream_body(track, grant, session_id=session.id, account_id=session.account_id)
    size = body.size  # the watermarked file differs per stream; see shield/streammark.py
    start, end = _byte_range(range_, size)
    budget = service.listen.guard.stream_budget(
        started_at=grant.issued_at, size_bytes=size, duration_s=track.duration_s, now=client.now
    )
    if grant.limit_s is not None:
        preview = int(size * min(1.0, grant.limit_s / max(track.duration_s, 1e-3)))
        if start >= preview:
            raise PreviewOnly(f"the {grant.limit_s:.0f}-second preview is over", hint="sign in to hear whole tracks")
        budget = min(budget, preview)
    if start >= budget:
        wait = max(1.0, (start - budget) / max(size, 1) * track.duration_s)
        raise Throttled("stream is ahead of real-time playback", retry_after_s=wait, hint="players fetch as they play")
    end = min(end, budget - 1)
    event = _event(client, "stream", account_id=session.account_id, account_created_at=session.account_created_at,
                   account_established_at=session.account_established_at,
                   track_id=track.id, nbytes=end - start + 1, duration_s=track.duration_s,
                   track_bytes=size, account_verified=_verified(session))  # fmt: skip
    _guard(request, service, event, passed_at=session.challenge_passed_at)
    if service.newcomer_budget is not None:  # distinct audio served to newcomers, up to this range's end
        service.newcomer_budget.on_stream(session, address=client.address, track=track.id,
                                          upto_s=(end + 1) / size * track.duration_s, now=client.now)  # fmt: skip
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {start}-{end}/{size}",
        "Cache-Control": "private, no-store",
        **service.listen.policy_headers(track.id),
    }
    return _timed(request, Response(body.read(start, end + 1), 206, headers=headers, media_type=body.media_type))


@router.post("/v1/listen/progress", status_code=204)
def progress(body: ProgressIn, request: Request, service: Service) -> Response:
    client = client_of(request, service)
    with _probing(request, service, client):
        session = _session(service, client)
    event = _event(client, "progress", account_id=session.account_id, account_created_at=session.account_created_at,
                   account_established_at=session.account_established_at,
                   track_id=body.track_id, position_s=body.position_s, player_event=body.event,
                   account_verified=_verified(session))  # fmt: skip
    _guard(request, service, event, passed_at=session.challenge_passed_at)
    return _timed(request, Response(status_code=204))


@router.post("/v1/listen/challenge", status_code=204)
def solve_challenge(body: ChallengeIn, request: Request, service: Service) -> Response:
    client = client_of(request, service)
    with _probing(request, service, client):
        session = _session(service, client)
    _guard(request, service, _event(client, "challenge", account_id=session.account_id))
    if not service.listen.guard.verify_challenge(
        session_id=session.id, token=body.token, nonce=body.nonce, now=client.now
    ):
        raise InvalidInput("challenge answer is wrong or expired", hint="ask again by retrying the request")
    service.store.mark_challenge_passed(session.id, at=client.now)
    return _timed(request, Response(status_code=204))


def _verified(session: ListenerSession) -> bool:
    """Anonymous sessions have nothing to verify; an account counts once it passed sign-up verification."""
    return session.account_id is None or session.account_verified_at is not None


def _public(track: Track, index: int, service: Consentune) -> dict[str, Any]:
    return {"id": track.id, "title": track.title, "artist": service.listen.artist_name(track.artist_id),
            "duration_s": track.duration_s, "index": index}  # fmt: skip


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    if header is None:
        return 0, size - 1
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise InvalidInput(f"unsupported Range {header!r}", hint="send one range like 'bytes=0-' or 'bytes=100-199'")
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(
            f"Range {header!r} is outside the {size}-byte file", hint="ask for bytes inside the file"
        )
    return start, end
