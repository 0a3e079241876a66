"""The attack family generator honours each parameter; look-alikes are played by existing organic accounts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from consentune.fraud.family import LOOKALIKES, CollusionSpec, collusion, lookalikes
from consentune.fraud.simulate import DAY, START, Stream, organic


@pytest.fixture(scope="module")
def world() -> Stream:
    return organic(users=600, tracks=4000, events=600 * 10 * 6, days=6, seed=5)


BASE = CollusionSpec(accounts=300, targets=40, density=0.2, camouflage=0.0, days=3.0, start=START + DAY)


def test_accounts_targets_density_and_window(world: Stream) -> None:
    attack = collusion(world, replace(BASE, plays_per_day=30.0), seed=1)
    ev = attack.events
    assert len(attack.accounts) == 300 and len(set(attack.tracks.tolist())) == 40
    assert set(np.unique(ev.user).tolist()) <= set(attack.accounts.tolist())
    assert set(np.unique(ev.track).tolist()) <= set(attack.tracks.tolist())  # no camouflage asked for
    assert ev.t.min() >= BASE.start and ev.t.max() < BASE.start + 3 * DAY
    pairs = len(np.unique(ev.user.astype(np.int64) * 10**6 + ev.track))
    # each account covers ~density of the targets (plus one forced), at 90 plays it reaches nearly all of them
    assert 0.18 * 300 * 40 < pairs < 0.28 * 300 * 40


@pytest.mark.parametrize("share", [0.0, 0.4, 0.8])
@pytest.mark.parametrize("where", ["popular", "random"])
def test_camouflage_share(world: Stream, share: float, where: str) -> None:
    attack = collusion(world, replace(BASE, camouflage=share, camouflage_on=where), seed=2)
    off_target = float(np.mean(~np.isin(attack.events.track, attack.tracks)))
    assert abs(off_target - share) < 0.06


def test_address_and_device_diversity(world: Stream) -> None:
    one = collusion(world, replace(BASE, address_diversity=0.0, device_diversity=0.0), seed=3).events
    each = collusion(world, replace(BASE, address_diversity=1.0, device_diversity=1.0), seed=3).events
    assert len(np.unique(one.net)) == 1 and len(np.unique(one.device)) == 1
    assert len(np.unique(each.net)) > 250 and len(np.unique(each.device)) > 250


def test_metronomic_timing_is_regular_and_human_is_not(world: Stream) -> None:
    def gap_cv(human: float) -> float:
        ev = collusion(world, replace(BASE, human=human, plays_per_day=12.0), seed=4).events
        cvs = []
        for user in np.unique(ev.user)[:50]:
            gaps = np.diff(np.sort(ev.t[ev.user == user]))
            cvs.append(gaps.std() / gaps.mean())
        return float(np.median(cvs))

    assert gap_cv(0.0) < 0.1 < 0.8 < gap_cv(1.0)


def test_ramp_up_and_aged_accounts(world: Stream) -> None:
    ev = collusion(world, replace(BASE, ramp_days=3.0, aged=True), seed=5).events
    first = np.sum(ev.t < BASE.start + DAY)
    last = np.sum(ev.t >= BASE.start + 2 * DAY)
    assert last > 3 * first
    assert np.all(BASE.start - ev.created > 300 * DAY)


def test_lookalikes_are_existing_accounts_of_every_kind(world: Stream) -> None:
    groups = lookalikes(world, start=START + DAY, seed=6)
    assert [g.kind for g in groups] == list(LOOKALIKES)
    for g in groups:
        assert len(g.accounts) and np.all(g.accounts < world.n_users)
        assert set(np.unique(g.events.track).tolist()) <= set(g.tracks.tolist())
    school = groups[LOOKALIKES.index("school_nat")]
    assert len(np.unique(school.events.net)) == 1 and len(school.accounts) == 30
