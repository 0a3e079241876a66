"""Organize respects consent: no `organize` consent → never decoded; revocation purges descriptors and index."""

from __future__ import annotations

import pytest

from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.errors import AccessDenied
from consentune.organize import FEATURE_KIND, OrganizeService
from consentune.organize.service import REFRESH_S
from consentune.service import Consentune
from consentune.types import ORGANIZE, TrackId

ACTOR = "service:organize-test"


@pytest.fixture(scope="module")
def songs() -> list[bytes]:
    return [
        encode(synthesize(SongSpec(seed=200 + i, duration_s=4.0, style=style)), 44_100, format="wav")
        for i, style in enumerate(("pop", "ambient", "techno", "lofi", "pop"))
    ]


@pytest.fixture
def world(svc: Consentune, songs: list[bytes]) -> dict[str, list[TrackId]]:
    out: dict[str, list[TrackId]] = {}
    for name in ("Ada", "Bo"):
        artist = svc.catalog.add_artist(name, actor="admin:test")
        out[name] = [
            svc.catalog.ingest(data, filename=f"s{i}.wav", artist=artist, title=f"{name} {i}", actor="t").track.id
            for i, data in enumerate(songs[:3] if name == "Ada" else songs[2:])
        ]
    return out


def _ledger_since(svc: Consentune, start: int) -> list[tuple[str, str | None, str | None, str]]:
    return [(e.action, e.track, e.purpose, e.decision) for e in svc.ledger.entries(range(start, svc.ledger.size))]


def test_without_consent_a_track_is_never_analysed(svc: Consentune, world: dict[str, list[TrackId]]) -> None:
    bo = svc.catalog.artist("Bo")
    svc.consent.set(bo, purpose=ORGANIZE, allow=False, actor="artist:bo")
    start = svc.ledger.size
    report = svc.organize.analyze([*world["Ada"], *world["Bo"]], actor=ACTOR)
    assert sorted(report.analysed) == sorted(world["Ada"]) and sorted(report.refused) == sorted(world["Bo"])
    entries = _ledger_since(svc, start)
    for track in world["Bo"]:
        assert {(a, d) for a, t, _p, d in entries if t == track} == {("read-audio", "deny")}
        assert svc.store.get_feature(track, FEATURE_KIND) is None
    for track in world["Ada"]:
        assert ("write-features", track, "organize", "allow") in entries
        assert svc.store.get_feature(track, FEATURE_KIND) is not None
    with pytest.raises(AccessDenied):
        svc.organize.descriptors(world["Bo"][0], actor=ACTOR)
    described = svc.organize.descriptors(world["Ada"][0], actor=ACTOR)
    assert described is not None and described.duration_s == pytest.approx(4.0, abs=0.01)


def test_revocation_purges_descriptors_and_leaves_the_index(svc: Consentune, world: dict[str, list[TrackId]]) -> None:
    tracks = [*world["Ada"], *world["Bo"]]
    svc.organize.analyze(tracks, actor=ACTOR)
    target = world["Ada"][0]
    neighbours = svc.organize.similar(world["Ada"][1], n=10, actor=ACTOR)
    assert neighbours is not None and target in {n.track for n in neighbours}
    ada = svc.catalog.artist("Ada")
    assert target in svc.organize.index
    svc.consent.revoke(ada, purpose=ORGANIZE, actor="artist:ada", track=target)
    assert svc.store.get_feature(target, FEATURE_KIND) is None
    assert target not in svc.organize.index  # removed by the purger, not merely filtered at query time
    assert ("purge", target, "organize", "record") in _ledger_since(svc, 0)
    after = svc.organize.similar(world["Ada"][1], n=10, actor=ACTOR)
    assert after is not None and target not in {n.track for n in after}
    assert len(after) == len(tracks) - 2
    with pytest.raises(AccessDenied):
        svc.organize.similar(target, actor=ACTOR)


def test_similar_prefers_the_same_recording(svc: Consentune, world: dict[str, list[TrackId]]) -> None:
    # Ada's third song and Bo's first are the same bytes (uploaded by both): nearest neighbours of each other
    svc.organize.analyze([*world["Ada"], *world["Bo"]], actor=ACTOR)
    neighbours = svc.organize.similar(world["Ada"][2], n=3, actor=ACTOR)
    assert neighbours and neighbours[0].track == world["Bo"][0]
    assert neighbours[0].similarity == pytest.approx(1.0, abs=1e-4)


def test_exact_duplicates_only_among_consenting_tracks(svc: Consentune, world: dict[str, list[TrackId]]) -> None:
    shared_ada, shared_bo = world["Ada"][2], world["Bo"][0]
    assert [m.track for m in svc.organize.duplicates(shared_ada, actor=ACTOR)] == [shared_bo]
    assert svc.organize.duplicate_groups(actor=ACTOR) == [sorted([shared_ada, shared_bo])]
    assert svc.organize.duplicates(world["Ada"][0], actor=ACTOR) == []
    bo = svc.catalog.artist("Bo")
    svc.consent.revoke(bo, purpose=ORGANIZE, actor="artist:bo")
    assert svc.organize.duplicates(shared_ada, actor=ACTOR) == []
    assert svc.organize.duplicate_groups(actor=ACTOR) == []


def test_a_lapsed_consent_is_never_served_and_leaves_the_index(
    svc: Consentune, world: dict[str, list[TrackId]]
) -> None:
    from datetime import UTC, datetime

    from consentune.consent.rules import ConsentRule

    svc.organize.analyze([*world["Ada"], *world["Bo"]], actor=ACTOR)
    target = world["Bo"][1]
    assert target in {n.track for n in svc.organize.similar(world["Bo"][2], actor=ACTOR) or []}
    # a rule that takes effect without a revocation event (as when a time-bounded opt-in runs out)
    bo = svc.catalog.artist("Bo")
    rule = ConsentRule(0, bo.id, target, ORGANIZE, False, datetime.now(UTC))
    svc.store.add_rule(rule, actor="test:lapse")
    assert target not in {n.track for n in svc.organize.similar(world["Bo"][2], actor=ACTOR) or []}
    assert target not in svc.organize.index


def test_descriptors_written_by_another_worker_reach_this_workers_similar_tracks(
    svc: Consentune, world: dict[str, list[TrackId]]
) -> None:
    ada = world["Ada"]
    svc.organize.analyze(ada[:2], actor=ACTOR)
    now = [0.0]
    other = OrganizeService(gate=svc.gate, catalog=svc.store, features=svc.store, monotonic=lambda: now[0])
    assert {n.track for n in other.similar(ada[0], n=5, actor=ACTOR) or []} == {ada[1]}  # loaded now
    svc.organize.analyze([ada[2], *world["Bo"]], actor=ACTOR)  # a job or another worker writes more
    now[0] += REFRESH_S / 2
    assert other.similar(ada[2], n=5, actor=ACTOR) is None  # not read yet: within the refresh interval
    now[0] += REFRESH_S / 2
    assert {n.track for n in other.similar(ada[2], n=10, actor=ACTOR) or []} == {*ada[:2], *world["Bo"]} - {ada[2]}
