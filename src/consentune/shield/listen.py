"""ListenerDesk: what listener-facing endpoints need, wired to the gate, the guard and the signer.

Every play asks the purpose gate for ``stream`` (so each listen is in the
usage ledger); audio bytes are read only through the gate's handle; the
URL a client gets is encrypted, session-bound and short-lived.

A listener session has two names.  Its *credential* (``ses_…``) is a bearer
secret the client keeps in a cookie (or the ``X-Session-Token`` header); it
never appears in a URL, a message, a stream token or the database.  Its
*id* (``sid_…``, a SHA-256 digest of the credential) is what the server
stores and the shield, the ledger pseudonym and stream tokens use; knowing
an id does not let anyone act as the listener.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from ipaddress import IPv4Network, IPv6Address, IPv6Network

from consentune.catalog import Catalog
from consentune.errors import AccessDenied, InvalidInput, NotFound, SignInRequired
from consentune.gate import PurposeGate, TrackHandle
from consentune.ports import CatalogEntry, ListenerSession, PublicCatalogRepo, ShieldRepo, StreamMark
from consentune.shield.active import ActivePlays, ActiveStreams, listener_identity
from consentune.shield.clientaddr import client_address, parse_address
from consentune.shield.guard import ShieldGuard
from consentune.shield.lru import LruCache
from consentune.shield.policy import TrackPolicySource
from consentune.shield.streammark import MarkedStream, PlainStream, StreamMarker
from consentune.shield.streams import StreamGrant, StreamSigner
from consentune.types import STREAM, Artist, ArtistId, Track, TrackId

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg-vorbis": "audio/ogg", "opus": "audio/ogg",
               "mp3": "audio/mpeg"}  # fmt: skip
ANONYMOUS_AUDIO = ("full", "preview", "none")
RESUME_WINDOW_S = 4 * 3600.0  # a paused play may be continued this long after it began (shared active plays keep 6 h)
_WORD = re.compile(r"[^\W_]+")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_id_of(credential: str) -> str:
    """The public id of a session credential: a digest, so the id never lets anyone act as the listener."""
    return f"sid_{_digest(credential)[:32]}"


class ListenerDesk:
    def __init__(
        self,
        *,
        store: ShieldRepo,
        catalog: Catalog,
        gate: PurposeGate,
        guard: ShieldGuard,
        signer: StreamSigner,
        trusted_proxies: Sequence[IPv4Network | IPv6Network],
        pseudonym_key: bytes,
        policy: TrackPolicySource,
        listing: PublicCatalogRepo,
        artist_cache: int = 100_000,
        catalog_ttl_s: float = 30.0,
        cache_bytes: int = 256 * 2**20,
        anonymous_audio: str = "none",
        preview_s: float = 30.0,
        marker: StreamMarker | None = None,
        active: ActiveStreams | None = None,  # shared across workers when given (sharedshield)
    ) -> None:
        if anonymous_audio not in ANONYMOUS_AUDIO:
            raise InvalidInput(f"anonymous_audio={anonymous_audio!r}", hint=f"one of {', '.join(ANONYMOUS_AUDIO)}")
        self.anonymous_audio = anonymous_audio
        self.preview_s = preview_s
        self._active: ActiveStreams = active or ActivePlays()
        self._store = store
        self._catalog = catalog
        self._gate = gate
        self.guard = guard
        self._signer = signer
        self._trusted = tuple(trusted_proxies)
        self._pseudonym_key = pseudonym_key
        self.policy = policy
        self._catalog_ttl_s = catalog_ttl_s
        self._lock = threading.Lock()
        self._listing = listing
        self._artists: LruCache[ArtistId, str] = LruCache(artist_cache)
        self._listable: LruCache[TrackId, tuple[int, float, datetime | None, bool]] = LruCache(artist_cache)
        self._latest: dict[TrackId, TrackHandle] = {}
        self._served: OrderedDict[TrackId, tuple[float, bytes]] = OrderedDict()
        self._served_bytes = 0
        self._cache_bytes = cache_bytes
        self._marker = marker  # forensic watermark per stream; None serves the packaged original

    def client_address(self, *, peer: str, x_forwarded_for: str | None, forwarded: str | None) -> str:
        """The client's address; IPv6 clients count per /64, the block one subscriber usually holds."""
        address = client_address(peer=peer, x_forwarded_for=x_forwarded_for, forwarded=forwarded, trusted=self._trusted)
        parsed = parse_address(address)
        if isinstance(parsed, IPv6Address):
            return str(IPv6Network((parsed, 64), strict=False))
        return address

    # -- accounts and sessions ---------------------------------------------
    def create_account(self, *, address: str, now: float) -> tuple[str, str]:
        account_id = f"acc_{secrets.token_hex(8)}"
        token = f"ctl_{secrets.token_urlsafe(24)}"
        self._store.add_listener_account(account_id, _digest(token), at=now, address=address)
        return account_id, token

    def create_session(
        self, *, account_token: str | None, address: str, user_agent: str, now: float
    ) -> tuple[str, str, str | None]:
        """(credential, session id, account id) of a new listener session; only the id is stored."""
        account_id = None
        if account_token:
            found = self._store.listener_account(_digest(account_token))
            if found is None:
                raise AccessDenied("unknown listener account token", hint="sign up with POST /v1/listen/accounts")
            account_id = found[0]
        credential = f"ses_{secrets.token_urlsafe(24)}"
        session_id = session_id_of(credential)
        self._store.add_listener_session(ListenerSession(session_id, account_id, now, address, user_agent, None))
        return credential, session_id, account_id

    def session(self, credential: str | None) -> ListenerSession:
        """The session a credential opens; raises :class:`InvalidInput` for none or an unknown one."""
        if not credential:
            raise InvalidInput("no listener session", hint="POST /v1/listen/sessions first and keep its cookie")
        session = self._store.listener_session(session_id_of(credential))
        if session is None:
            raise InvalidInput("unknown listener session", hint="POST /v1/listen/sessions to start a new one")
        return session

    # -- public catalogue ------------------------------------------------------
    # Every call is an index lookup or a range scan in the database: nothing here grows with the catalogue.
    def catalog_page(
        self, *, offset: int, limit: int, scan_pages: int = 8
    ) -> tuple[list[tuple[int, Track]], int | None]:
        """Streamable tracks from index ``offset`` on, in catalogue order, and the index the next page starts
        at (None at the end).  A keyset scan: the next page skips nothing and repeats nothing when tracks come
        or go.  Tracks the gate would not stream (the artist's consent, or a copy held or blocked by a claim)
        are not listed; at most ``scan_pages`` × ``limit`` rows are read per call, so a run of hidden tracks
        costs a shorter page, never an unbounded scan."""
        shown: list[tuple[int, Track]] = []
        after = offset
        for _ in range(scan_pages):
            entries = self._listing.catalog_page(after=after, limit=limit)
            shown += self._streamable(self._listed(entries))
            at_end = len(entries) < limit
            if len(shown) > limit or (len(shown) == limit and not at_end):
                return shown[:limit], shown[limit - 1][0] + 1
            if at_end:
                return shown, None
            after = entries[-1].index + 1
        return shown, after

    def search(self, query: str, *, limit: int) -> list[tuple[int, Track]]:
        """Streamable tracks whose title or artist holds every word of ``query`` (the last as a prefix)."""
        return self._streamable(self._listed(self._listing.search_catalog(search_words(query), limit=limit)))

    def _streamable(self, rows: list[tuple[int, Track]]) -> list[tuple[int, Track]]:
        """``rows`` the gate would stream now (read-only ``decide``: consent metadata, nothing logged).

        Answers are kept per track while the site-wide consent counter (moved by every consent, terms and
        claim change, in the same transaction) is unchanged and no time-bounded rule of the track's artist
        has started or ended since (and for at most ``catalog_ttl_s``, which also covers a rule of a
        claimed copy's original): a page costs one counter read instead of the gate's consent queries, and
        a consent change still reaches the listing on the next request.  The counter is read before
        deciding, so an answer is never filed under a newer counter than the consent it saw."""
        if not rows:
            return rows
        version, now, wall = self._listing.consent_version(), self._gate.now(), time.monotonic()
        allowed: dict[TrackId, bool] = {}
        for _, track in rows:
            kept = self._listable.get(track.id)
            if kept is not None and kept[0] == version and wall < kept[1] and (kept[2] is None or now < kept[2]):
                allowed[track.id] = kept[3]
        missing = [track.id for _, track in rows if track.id not in allowed]
        if missing:
            decisions, stable_until = self._gate.decide_purposes(purposes=[STREAM], tracks=missing)
            for track_id, ok in zip(missing, decisions[STREAM].allowed.tolist(), strict=True):
                allowed[track_id] = ok
                self._listable.put(track_id, (version, wall + self._catalog_ttl_s, stable_until, ok))
        return [row for row in rows if allowed[row[1].id]]

    def indexed(self, track_id: str) -> tuple[int, Track]:
        entry = self._listing.catalog_entry(TrackId(track_id))
        if entry is None:
            raise NotFound(f"unknown track {track_id!r}", hint="browse GET /v1/listen/catalog")
        return self._listed([entry])[0]

    def artist_name(self, artist_id: ArtistId) -> str:
        name = self._artists.get(artist_id)
        if name is None:
            artist = self._catalog_repo_artist(artist_id)
            name = artist.name if artist is not None else ""
            self._artists.put(artist_id, name)
        return name

    def _listed(self, entries: Sequence[CatalogEntry]) -> list[tuple[int, Track]]:
        for entry in entries:  # the names ride along with the rows, so _public needs no query of its own
            self._artists.put(entry.track.artist_id, entry.artist_name)
        return [(entry.index, entry.track) for entry in entries]

    def policy_headers(self, track_id: TrackId) -> dict[str, str]:
        return self.policy.headers(self.indexed(TrackId(track_id))[1])

    # -- plays and streams ---------------------------------------------------
    def audio_limit(self, *, account_id: str | None) -> float | None:
        """Seconds of each track this listener may hear (None: all); raises :class:`SignInRequired` if none.

        Signed-in listeners hear everything; anonymous ones what ``anonymous_audio`` says: ``full``,
        ``preview`` (the first ``preview_s``) or ``none`` (sign in to listen, as most services require).
        """
        if account_id is not None or self.anonymous_audio == "full":
            return None
        if self.anonymous_audio == "preview":
            return self.preview_s
        raise SignInRequired("listening needs a listener account", hint="sign up with POST /v1/listen/accounts, "
                             "then start a session with its token")  # fmt: skip

    def start_play(
        self,
        *,
        session_id: str,
        track: Track,
        now: float,
        account_id: str | None = None,
        limit_s: float | None = None,
        resume: str | None = None,
    ) -> tuple[str, float, bool]:
        """Ask the gate for ``stream`` (logged), start the real-time budget, end the listener's previous stream.

        ``resume`` is the stream token of a play whose URL expired during a pause: when it is this
        session's, of this track, began within :data:`RESUME_WINDOW_S` and is still the listener's latest
        play, the new URL continues that play (its real-time budget goes on from the play's start, so
        the listener does not wait for real time to catch up with where they paused). Otherwise the play
        starts afresh. Returns (token, expires at, continued).
        """
        self._handle(session_id, track.id)  # consent is asked again: it may have changed during the pause
        identity = listener_identity(session_id=session_id, account_id=account_id)
        started = self._resumable(resume, session_id=session_id, identity=identity, track=track, now=now)
        valid_s = max(self._signer.ttl_s, track.duration_s + 120.0)  # long enough to finish the track
        token, grant = self._signer.issue(
            session_id=session_id, track_id=track.id, now=now, valid_s=valid_s, limit_s=limit_s, started_at=started
        )
        self._active.start(identity, grant.nonce)
        if started is None:  # a continued play keeps its serial, recorded when it began
            self._record_mark(grant.issued_at, session_id=session_id, account_id=account_id, track_id=track.id)
        return token, now + valid_s, started is not None

    def _resumable(
        self, resume: str | None, *, session_id: str, identity: str, track: Track, now: float
    ) -> float | None:
        """When the play ``resume`` names may be continued, its start; else None.

        Only the identity's latest play qualifies (checked positively: a forgotten one does not), so a
        listener continues one play at a time and never gets more audio than real time since it began.
        """
        if not resume:
            return None
        try:
            old = self._signer.verify_ended(resume, session_id=session_id, now=now, max_age_s=RESUME_WINDOW_S)
        except AccessDenied:
            return None
        if old.track_id != track.id or old.limit_s is not None or not self._active.is_latest(identity, old.nonce):
            return None
        return old.issued_at

    def verify_stream(
        self, token: str, *, session_id: str, now: float, account_id: str | None = None
    ) -> tuple[Track, StreamGrant]:
        """The signed track and its grant (play start for the real-time budget, preview limit); a stream
        superseded by a newer play of the same listener raises :class:`StreamSuperseded`."""
        grant = self._signer.verify_play(token, session_id=session_id, now=now)
        self._active.check(listener_identity(session_id=session_id, account_id=account_id), grant.nonce)
        return self.indexed(grant.track_id)[1], grant

    def stream_bytes(self, track: Track) -> tuple[bytes, str]:
        """The servable bytes (original plus embedded policy), cached briefly so consent changes show."""
        with self._lock:
            entry = self._served.get(track.id)
        if entry is not None and time.monotonic() - entry[0] < self._catalog_ttl_s:
            data = entry[1]
        else:
            original = self._gate.read_audio(self._any_handle(track.id))
            data = self.policy.package(track, original, artist=self.artist_name(track.artist_id))
            self._remember(track.id, data)
        return data, MEDIA_TYPES.get(track.format, "application/octet-stream")

    # -- forensic watermark (shield/streammark.py) -----------------------------
    def stream_body(
        self, track: Track, grant: StreamGrant, *, session_id: str, account_id: str | None
    ) -> MarkedStream | PlainStream:
        """What a stream serves: a WAV marked with the stream's serial (account, else session, and play
        minute), rendered piece by piece as ranges are read; the packaged original when marking is off."""
        if self._marker is not None:
            payload = self._marker.serial(listener_id=account_id or session_id, issued_at=grant.issued_at)
            marked = self._marker.stream(
                stream_key=grant.nonce,
                track_id=track.id,
                payload=payload,
                decode=lambda: self._gate.decode_audio(self._any_handle(track.id)),
                xmp=lambda: self.policy.sidecar(track, artist=self.artist_name(track.artist_id)),
            )
            if marked is not None:
                return marked
        return PlainStream(*self.stream_bytes(track))

    def served_size(self, track: Track) -> int:
        """Bytes every stream of ``track`` has (marked streams differ in content, not in size)."""
        if self._marker is not None:
            size = self._marker.size(
                track_id=track.id,
                decode=lambda: self._gate.decode_audio(self._any_handle(track.id)),
                xmp=lambda: self.policy.sidecar(track, artist=self.artist_name(track.artist_id)),
            )
            if size is not None:
                return size
        return len(self.stream_bytes(track)[0])

    def ledger_actor(self, session_id: str) -> str:
        """The pseudonym the ledger logs a session's plays under (to find a stream entry from a serial)."""
        return self._pseudonym(session_id)

    def _record_mark(self, issued_at: float, *, session_id: str, account_id: str | None, track_id: TrackId) -> None:
        if self._marker is None:
            return
        serial = self._marker.serial(listener_id=account_id or session_id, issued_at=issued_at)
        self._store.add_stream_mark(StreamMark(serial.hex(), session_id, account_id, track_id, issued_at))

    # -- internals ---------------------------------------------------------
    def _handle(self, session_id: str, track_id: TrackId) -> TrackHandle:
        grant = self._gate.request(actor=self._pseudonym(session_id), purpose=STREAM, tracks=[track_id])
        if not grant.allowed:
            raise AccessDenied(
                f"track {track_id} may not be streamed: {grant.denied[0].reason}", hint="pick another track"
            )
        handle = grant.allowed[0]
        with self._lock:
            self._latest[track_id] = handle
        return handle

    def _pseudonym(self, session_id: str) -> str:
        """Ledger actor for a listener: stable per session, but not the session credential itself."""
        digest = hmac.new(self._pseudonym_key, session_id.encode(), hashlib.sha256).hexdigest()[:16]
        return f"listener:{digest}"

    def _any_handle(self, track_id: TrackId) -> TrackHandle:
        """The latest live stream handle for the track; if none (another worker, expired), ask the gate."""
        with self._lock:
            handle = self._latest.get(track_id)
        if handle is not None and handle.expires_at > time.time() + 5:
            return handle
        return self._handle("server", track_id)

    def _remember(self, track_id: TrackId, data: bytes) -> None:
        with self._lock:
            old = self._served.pop(track_id, None)
            self._served_bytes -= len(old[1]) if old else 0
            self._served[track_id] = (time.monotonic(), data)
            self._served_bytes += len(data)
            while self._served_bytes > self._cache_bytes and len(self._served) > 1:
                _old, (_at, dropped) = self._served.popitem(last=False)
                self._served_bytes -= len(dropped)

    def _catalog_repo_artist(self, artist_id: ArtistId) -> Artist | None:
        try:
            return self._catalog.artist(artist_id)
        except NotFound:
            return None


def search_words(query: str, *, most: int = 8) -> list[str]:
    """The words of a search box query: runs of letters and digits, lower-cased, at most ``most``."""
    return _WORD.findall(query.lower())[:most]


__all__ = ["ANONYMOUS_AUDIO", "MEDIA_TYPES", "ListenerDesk", "search_words", "session_id_of"]
