"""Consent written by one process is what every other process decides with, on SQLite and PostgreSQL.

Each test runs a second OS process (spawned, its own engine and service) that
answers gate requests over a pipe while this process changes consent.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.service import Consentune, open_service
from consentune.types import RECOMMEND, TRAIN_AI, Artist, Purpose, Track, TrackId


def _serve(settings: Settings, conn: Connection, clock_skew_s: float) -> None:
    """The other process: answer ("request", purpose, tracks) and ("set", artist_id, purpose, allow)."""
    svc = open_service(settings)
    if clock_skew_s:
        svc.consent._clock = lambda: datetime.now(UTC) + timedelta(seconds=clock_skew_s)
    try:
        while (msg := conn.recv()) is not None:
            if msg[0] == "request":
                grant = svc.gate.request(actor="service:other", purpose=msg[1], tracks=msg[2])
                conn.send(sorted(h.track for h in grant.allowed))
            elif msg[0] == "burst":
                for _ in range(msg[3]):
                    svc.gate.request(actor="service:other", purpose=msg[1], tracks=msg[2])
                conn.send("ok")
            else:
                artist = svc.catalog.artist(msg[1])
                svc.consent.set(artist, purpose=msg[2], allow=msg[3], actor="artist:other")
                conn.send("ok")
    finally:
        svc.close()


@dataclass
class Other:
    conn: Connection

    def allowed(self, purpose: Purpose, tracks: list[TrackId]) -> list[TrackId]:
        self.conn.send(("request", purpose, tracks))
        answer: list[TrackId] = self._answer()
        return answer

    def _answer(self) -> object:
        assert self.conn.poll(60), "the other process did not answer within 60 s"
        return self.conn.recv()

    def start_burst(self, purpose: Purpose, tracks: list[TrackId], count: int) -> None:
        self.conn.send(("burst", purpose, tracks, count))

    def burst_done(self) -> bool:
        return self.conn.poll(0) and self.conn.recv() == "ok"

    def set(self, artist: Artist, purpose: Purpose, *, allow: bool) -> None:
        self.conn.send(("set", artist.id, purpose, allow))
        assert self._answer() == "ok"


def _other_process(settings: Settings, *, clock_skew_s: float = 0.0) -> Iterator[Other]:
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(settings, theirs, clock_skew_s), daemon=True)
    process.start()
    try:
        yield Other(mine)
        mine.send(None)
        process.join(timeout=60)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def here(settings: Settings) -> Iterator[Consentune]:
    service = open_service(settings)
    yield service
    service.close()


@pytest.fixture
def other(settings: Settings, here: Consentune) -> Iterator[Other]:
    yield from _other_process(settings)


@pytest.fixture
def skewed_other(settings: Settings, here: Consentune) -> Iterator[Other]:
    """Another process (think: another host) whose clock runs an hour ahead."""
    yield from _other_process(settings, clock_skew_s=3600.0)


def _tracks(svc: Consentune, artist: Artist, count: int) -> list[TrackId]:
    out = []
    for i in range(count):
        track = Track(
            TrackId(f"trk_{artist.name.lower()}{i}"), artist.id, f"t{i}", f"{i:064x}", "wav", 1.0, 44_100, 1, 10,
            datetime.now(UTC),
        )  # fmt: skip
        svc.store.add_track(track, filename="t.wav", actor="test")
        out.append(track.id)
    return out


def test_every_change_here_is_what_the_other_process_decides_next(here: Consentune, other: Other) -> None:
    ada, bo = here.catalog.add_artist("Ada", actor="admin"), here.catalog.add_artist("Bo", actor="admin")
    ada_tracks, bo_tracks = _tracks(here, ada, 2), _tracks(here, bo, 1)
    everything = ada_tracks + bo_tracks
    assert other.allowed(RECOMMEND, everything) == sorted(everything)  # warm: the other side has read consent
    for step in range(6):
        allow = step % 2 == 1
        here.consent.set(ada, purpose=RECOMMEND, allow=allow, actor="artist:ada")
        expected = sorted(everything if allow else bo_tracks)
        assert other.allowed(RECOMMEND, everything) == expected, f"step {step}: stale consent in the other process"
        here.consent.set(ada, purpose=TRAIN_AI, allow=not allow, actor="artist:ada", track=ada_tracks[0])
        assert other.allowed(TRAIN_AI, everything) == ([] if allow else [ada_tracks[0]])
    # and the other way round: a withdrawal there is what this process decides next
    other.set(bo, TRAIN_AI, allow=True)
    assert [h.track for h in here.gate.request(actor="s", purpose=TRAIN_AI, tracks=bo_tracks).allowed] == bo_tracks
    other.set(bo, TRAIN_AI, allow=False)
    assert here.gate.request(actor="s", purpose=TRAIN_AI, tracks=bo_tracks).allowed == ()


def test_terms_accepted_here_are_what_the_other_process_decides_with(here: Consentune, other: Other) -> None:
    ada = here.catalog.add_artist("Ada", actor="admin")
    tracks = _tracks(here, ada, 1)
    assert other.allowed(RECOMMEND, tracks) == tracks
    kinds = {p: k.value for p, k in here.consent.current_terms().kinds.items()}
    stricter = here.consent.publish_terms(dict(kinds, recommend="opt-in"), summary="opt-in", actor="admin")
    assert other.allowed(RECOMMEND, tracks) == tracks  # published, not yet accepted
    here.consent.accept_terms(ada, version=stricter.version, actor="artist:ada")
    assert other.allowed(RECOMMEND, tracks) == []


def test_a_withdrawal_stored_last_wins_over_an_allow_from_a_clock_ahead(here: Consentune, skewed_other: Other) -> None:
    """The latest stored answer is in force, whatever the writers' clocks say."""
    ada = here.catalog.add_artist("Ada", actor="admin")
    tracks = _tracks(here, ada, 2)
    skewed_other.set(ada, TRAIN_AI, allow=True)
    assert skewed_other.allowed(TRAIN_AI, tracks) == sorted(tracks)
    here.consent.set(ada, purpose=TRAIN_AI, allow=False, actor="artist:ada")
    assert here.gate.request(actor="s", purpose=TRAIN_AI, tracks=tracks).allowed == ()
    assert skewed_other.allowed(TRAIN_AI, tracks) == []
    rules = here.store.rules_for_artists([ada.id])
    assert [r.allow for r in sorted(rules, key=lambda r: (r.created_at, r.id))] == [True, False]


def test_the_ledger_never_logs_a_decision_out_of_order_with_consent_changes(here: Consentune, other: Other) -> None:
    """Replaying the ledger in order, every logged decision matches the consent logged before it."""
    ada = here.catalog.add_artist("Ada", actor="admin")
    tracks = _tracks(here, ada, 2)
    other.start_burst(TRAIN_AI, tracks, 60)
    changes = 0
    while not other.burst_done():
        here.consent.set(ada, purpose=TRAIN_AI, allow=changes % 2 == 0, actor="artist:ada")
        changes += 1
    assert changes >= 2
    allowed = dict.fromkeys(tracks, False)  # opt-in: off until the artist says yes
    checked = 0
    for entry in here.ledger.entries(range(here.ledger.size)):
        if entry.purpose != TRAIN_AI or entry.track not in allowed:
            continue
        if entry.action == "consent-set":
            allowed[TrackId(entry.track)] = entry.reason.startswith("allow")
        elif entry.action == "read-audio":
            assert (entry.decision == "allow") == allowed[TrackId(entry.track)], entry
            checked += 1
    assert checked == 60 * len(tracks)


def _serve_inherited(svc: Consentune, conn: Connection) -> None:
    """A forked child using the service object it inherited (engine, pool and all)."""
    while (msg := conn.recv()) is not None:
        grant = svc.gate.request(actor="service:forked", purpose=msg[1], tracks=msg[2])
        conn.send(sorted(h.track for h in grant.allowed))


def test_a_forked_child_using_the_inherited_service_sees_every_change(here: Consentune) -> None:
    ada = here.catalog.add_artist("Ada", actor="admin")
    tracks = _tracks(here, ada, 2)
    assert len(here.gate.request(actor="s", purpose=RECOMMEND, tracks=tracks).allowed) == 2  # pool in use
    ctx = mp.get_context("fork")
    mine, theirs = ctx.Pipe()
    child = ctx.Process(target=_serve_inherited, args=(here, theirs), daemon=True)
    child.start()
    try:
        forked = Other(mine)
        for step in range(4):
            allow = step % 2 == 1
            here.consent.set(ada, purpose=RECOMMEND, allow=allow, actor="artist:ada")
            assert forked.allowed(RECOMMEND, tracks) == (sorted(tracks) if allow else [])
            assert len(here.gate.request(actor="s", purpose=RECOMMEND, tracks=tracks).allowed) == (2 if allow else 0)
        mine.send(None)
        child.join(timeout=60)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
    assert here.ledger.audit().ok


def test_ai_use_signals_follow_a_change_made_by_another_process_at_once(here: Consentune, other: Other) -> None:
    """robots.txt, TDMRep, headers and XMP are cached, but never across a consent change."""
    ada = here.catalog.add_artist("Ada", actor="admin")
    (track,) = _tracks(here, ada, 1)

    def train_ai_allowed() -> bool:
        policy = here.listen.policy.track_policy(here.catalog.track(track))
        return bool(policy.allowed[TRAIN_AI])

    assert not train_ai_allowed()  # cached now, for signal_ttl_s (30 s) unless consent moves
    other.set(ada, TRAIN_AI, allow=True)
    assert train_ai_allowed()
    other.set(ada, TRAIN_AI, allow=False)
    assert not train_ai_allowed()
