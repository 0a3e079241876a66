"""Smoke test of ``consentune bench shield``: a tiny simulation against the real server, and byte counting."""

from __future__ import annotations

import shutil
from collections.abc import Generator
from pathlib import Path

import pytest

from consentune.bench.shield import START, ShieldBenchConfig, run_seed, summarize
from consentune.bench.shieldsim.catalogue import Catalogue, build_catalogue
from consentune.bench.shieldsim.client import Budget, ByteRanges, GroupStats, SimClient
from consentune.bench.shieldsim.server import running_server


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalogue]:
    home = tmp_path_factory.mktemp("shield-template")
    return home, build_catalogue(home, tracks=60, base_pieces=2)


def test_byte_ranges_count_each_byte_once() -> None:
    ranges = ByteRanges()
    for start, end in [(0, 99), (50, 149), (200, 299), (150, 199), (10, 20)]:
        ranges.add("t", start, end)
    ranges.add("u", 5, 5)
    assert ranges.of("t") == 300
    assert ranges.total() == 301


def test_a_fully_fetched_track_counts_its_size_once(catalogue: tuple[Path, Catalogue], tmp_path: Path) -> None:
    template, cat = catalogue
    shutil.copytree(template, tmp_path / "home")
    track = cat.tracks[0]
    group = GroupStats("probe")
    budget = Budget(10_000, 10_000, deadline=float("inf"))
    with running_server(tmp_path / "home") as base_url:
        client = SimClient(base_url=base_url, group=group, budget=budget, address="198.51.100.7", user_agent="probe")
        try:
            now = START
            assert client.sign_up(now).status == 201  # the server's default policy: sign in to listen
            assert client.start_session(now).status == 201
            play = client.play(track.id, now)
            assert play.status == 200
            url = str(play.data["stream_url"])
            received = 0
            # overlapping ranges, then everything once the real-time budget has passed the end
            for offset, at in [(0, 1.0), (1000, 2.0), (500, 3.0), (0, track.duration_s)]:
                reply, _next = client.fetch(url, now + at, start=offset)
                assert reply.status == 206
                received += len(reply.body)
        finally:
            client.close()
    assert received > track.size_bytes
    assert group.ranges.of(track.id) == track.size_bytes
    assert group.ranges.tracks() == [track.id]


def test_tiny_simulation_reports_every_measure(catalogue: tuple[Path, Catalogue], tmp_path: Path) -> None:
    template, cat = catalogue
    shutil.copytree(template, tmp_path / "home")
    config = ShieldBenchConfig(tracks=60, sessions=10, visitor_sessions=4, days=1 / 24, seeds=1,
                               strategies=("naive", "browser_like"), restart_after_h=0.5)  # fmt: skip
    seed = run_seed(config, cat, home=tmp_path / "home", seed=3, wall_s=300.0)  # a cap: a loaded machine is slow
    results = summarize(config, cat, [seed])

    assert set(seed["strategies"]) == {"naive", "browser_like"}
    assert seed["strategies"]["naive"]["bytes"] == 0  # anonymous: the default policy asks it to sign in
    visitors = seed["visitors"]
    assert visitors["sessions"] == 4 and visitors["plays_served"] == 0 and visitors["asked_to_sign_in"] >= 1
    sizes = {t.id: t.size_bytes for t in cat.tracks}
    for strategy in seed["strategies"].values():
        assert 0 <= strategy["bytes"] <= cat.total_bytes
        assert strategy["share_pct"] == pytest.approx(100 * strategy["bytes"] / cat.total_bytes)
        assert strategy["tracks_complete"] <= strategy["tracks_touched"] <= len(sizes)
        assert strategy["requests"] > 0
    assert seed["strategies"]["browser_like"]["bytes"] > 0  # it got something before being stopped
    legit = seed["legit"]
    assert legit["sessions"] == 10
    assert 0 <= legit["hindered"] <= legit["sessions"]
    assert legit["plays"] > 0
    latency = seed["latency"]["shield_ms"]
    assert latency["n"] > 0 and 0 <= latency["p50"] <= latency["p99"] <= latency["max"]
    assert set(results["goals"]) == {
        "scraper naive share < 1% or slowed to a newcomer's median",
        "scraper browser_like share < 1% or slowed to a newcomer's median",
        "legit hindered <= 0.1%",
        "legit plays hindered <= 0.1%",
        "no hindered listener with history",
        "shield p99 < 2 ms",
    }
    served = seed["newcomer_served"]
    assert served["identity_day_h"]["n"] >= 0 and served["identity_day_h"]["median"] <= served["identity_day_h"]["max"]
    assert legit["hindered_with_history"] <= legit["hindered"]
    assert seed["cpu_s"]["server"] > 0 and seed["cpu_s"]["harness"] > 0
    assert seed["restarts"] == 1  # listeners and scrapers went on against the restarted server
    assert all({"worst", "met", "ratio"} <= set(g) for g in results["goals"].values())


def test_the_loop_reports_when_a_cap_stopped_the_simulation() -> None:
    """Sleeping agents keep advancing time after a cap; the cap's own time is how far the run got."""
    from consentune.bench.shieldsim.engine import Loop

    budget = Budget(3, 100, deadline=float("inf"))

    def busy() -> Generator[float, float, None]:
        now = yield 0.0
        while True:
            budget.take(0)
            now = yield now + 10.0

    def sleeper() -> Generator[float, float, None]:
        now = yield 0.0
        while True:
            now = yield now + 25.0

    loop = Loop(end=100.0)
    loop.add(busy())
    loop.add(sleeper())
    loop.run()
    assert loop.capped_at == 30.0 and budget.exhausted.startswith("total request cap")
    assert loop.reached == 100.0  # the sleeper went on: `reached` alone overstates the run
    assert loop.stopped_by_cap == ["total request cap 3"]


def test_the_in_process_app_serves_like_the_server_and_survives_a_restart(
    catalogue: tuple[Path, Catalogue], tmp_path: Path
) -> None:
    from consentune.bench.shieldsim.inprocess import InProcessServer
    from consentune.bench.shieldsim.server import free_port, server_env

    template, cat = catalogue
    home = tmp_path / "home"
    shutil.copytree(template, home)
    track = cat.tracks[1]
    group = GroupStats("probe")
    budget = Budget(10_000, 10_000, deadline=float("inf"))
    env = server_env(home, anonymous_audio="none", newcomer_budget=None, watermark=True)
    with InProcessServer(env, home=home, port=free_port()) as server:
        client = SimClient(base_url=server.url, group=group, budget=budget, address="198.51.100.8", user_agent="probe")
        assert client.sign_up(START).status == 201 and client.start_session(START).status == 201
        play = client.play(track.id, START)
        assert play.status == 200
        first, _next = client.fetch(str(play.data["stream_url"]), START + 1.0, start=0)
        assert first.status == 206
        server.restart()  # a deploy: the same cookie and URL keep working against the new process
        rest, _next = client.fetch(str(play.data["stream_url"]), START + track.duration_s, start=0)
        assert rest.status == 206 and server.restarts == 1
        client.close()
    assert group.ranges.of(track.id) == track.size_bytes  # the size the catalogue measured is what it served
