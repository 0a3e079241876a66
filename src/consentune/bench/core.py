"""``consentune bench core``: ledger, proofs, consent decisions and ingest on this machine.

Targets from the foundation issue: >= 20,000 ledger appends/s (batched) and
>= 1,000,000 consent decisions/s (batched).  Ceilings: ``consentune --help`` and
a light verb (offline receipt verification) cost <= 0.3 CPU-s each, measured
as a user pays them: a fresh process, user + system time of the child.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consentune.config import Settings
from consentune.consent.decide import ConsentContext, decide_batch
from consentune.consent.rules import ConsentRule
from consentune.consent.terms import default_terms
from consentune.errors import ConsentuneError
from consentune.ledger import root_at, verify_consistency, verify_inclusion
from consentune.ledger.log import UsageRecord
from consentune.service import Consentune, open_service
from consentune.types import ArtistId, Purpose, TrackId

TARGETS = {"ledger_appends_per_s": 20_000, "consent_decisions_per_s": 1_000_000}
CEILINGS = {"cli_help_cpu_s": 0.3, "cli_verify_receipt_cpu_s": 0.3}


def run_core(
    *,
    ledger_entries: int = 1_000_000,
    batch: int = 10_000,
    decisions: int = 1_000_000,
    ingest_tracks: int = 12,
    database_url: str | None = None,
    seed: int = 7,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Run every core benchmark; return a JSON-ready dict of figures."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="consentune-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home, database_url=database_url or f"sqlite:///{home / 'bench.db'}")
        svc = open_service(settings)
        try:
            results: dict[str, Any] = {"backend": svc.store.engine.dialect.name}
            progress(f"ledger: appending {ledger_entries:,} entries in batches of {batch:,}")
            results.update(_bench_appends(svc, ledger_entries, batch))
            progress("ledger: proofs at full size")
            results.update(_bench_proofs(svc, rng))
            progress("ledger: audit")
            start = time.perf_counter()
            report = svc.ledger.audit()
            results["audit_s"] = time.perf_counter() - start
            results["audit_ok"] = report.ok
            progress(f"ingest: {ingest_tracks} synthesized tracks")
            results.update(_bench_ingest(svc, ingest_tracks))
            progress("cli: CPU seconds of --help, an offline verify and a database verb, in fresh processes")
            results.update(_bench_cli(svc, home))  # before the gate bench: a receipt of the few ingest entries
            progress("gate: end-to-end decisions through the database and ledger")
            results.update(_bench_gate(svc))
        finally:
            svc.close()
    progress(f"consent: {decisions:,} batched decisions")
    results.update(_bench_decisions(decisions, rng))
    results["targets"] = TARGETS
    results["meets_targets"] = {
        "ledger_appends_per_s": results["ledger_appends_per_s"] >= TARGETS["ledger_appends_per_s"],
        "consent_decisions_per_s": results["consent_decisions_per_s"] >= TARGETS["consent_decisions_per_s"],
    }
    results["ceilings"] = CEILINGS
    results["meets_ceilings"] = {key: results[key] <= ceiling for key, ceiling in CEILINGS.items()}
    return results


def _bench_appends(svc: Consentune, total: int, batch: int) -> dict[str, Any]:
    records = [
        UsageRecord(
            "service:bench",
            "read-audio",
            "recommend",
            f"trk_{i:012x}",
            "allow",
            "artist rule: allow",
            1,
        )
        for i in range(batch)
    ]
    start = time.perf_counter()
    done = 0
    while done < total:
        n = min(batch, total - done)
        svc.ledger.append(records[:n])
        done += n
    elapsed = time.perf_counter() - start
    return {
        "ledger_entries": total,
        "ledger_batch": batch,
        "ledger_append_s": elapsed,
        "ledger_appends_per_s": total / elapsed,
    }


def _bench_proofs(svc: Consentune, rng: random.Random, samples: int = 200) -> dict[str, Any]:
    cp = svc.ledger.checkpoint()
    size = cp.size
    gen_inc, ver_inc, gen_con, ver_con = [], [], [], []
    rows = {r.seq: r.leaf_hash for r in svc.store.ledger_rows([rng.randrange(size) for _ in range(samples)])}
    for index, leaf in rows.items():
        t0 = time.perf_counter()
        proof = svc.ledger.inclusion_proof(index, size)
        t1 = time.perf_counter()
        verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=cp.root_hash)
        t2 = time.perf_counter()
        gen_inc.append(t1 - t0)
        ver_inc.append(t2 - t1)
    for _ in range(min(samples, 50)):
        old = rng.randrange(1, size)
        t0 = time.perf_counter()
        proof = svc.ledger.consistency_proof(old, size)
        t1 = time.perf_counter()
        old_root = root_at(old, svc.store)
        t2 = time.perf_counter()
        verify_consistency(old_size=old, new_size=size, old_root=old_root, new_root=cp.root_hash, proof=proof)
        t3 = time.perf_counter()
        gen_con.append(t1 - t0)
        ver_con.append(t3 - t2)
    ms = 1000.0
    return {
        "proof_tree_size": size,
        "inclusion_proof_gen_ms_median": statistics.median(gen_inc) * ms,
        "inclusion_proof_verify_ms_median": statistics.median(ver_inc) * ms,
        "consistency_proof_gen_ms_median": statistics.median(gen_con) * ms,
        "consistency_proof_verify_ms_median": statistics.median(ver_con) * ms,
    }


def _bench_ingest(svc: Consentune, n: int) -> dict[str, Any]:
    from consentune.demo.synth import SongSpec, encode, synthesize

    artist = svc.catalog.add_artist("Bench Artist", actor="admin:bench")
    files = [encode(synthesize(SongSpec(seed=s, duration_s=30.0)), 44_100, format="flac") for s in range(n)]
    start = time.perf_counter()
    for i, data in enumerate(files):
        svc.catalog.ingest(data, filename=f"bench-{i}.flac", artist=artist, title=None, actor="admin:bench")
    elapsed = time.perf_counter() - start
    mb = sum(len(f) for f in files) / 2**20
    return {
        "ingest_tracks": n,
        "ingest_track_s": 30.0,
        "ingest_tracks_per_s": n / elapsed,
        "ingest_mb_per_s": mb / elapsed,
        "ingest_audio_s_per_s": n * 30.0 / elapsed,
    }


def _bench_gate(svc: Consentune) -> dict[str, Any]:
    tracks = [t.id for t in svc.catalog.tracks(limit=1000)] * 1000
    start = time.perf_counter()
    svc.gate.request(actor="service:bench", purpose=Purpose("recommend"), tracks=tracks[:10_000])
    elapsed = time.perf_counter() - start
    return {
        "gate_request_tracks": 10_000,
        "gate_request_s": elapsed,
        "gate_decisions_logged_per_s": 10_000 / elapsed,
    }


def _bench_cli(svc: Consentune, home: Path, runs: int = 5) -> dict[str, Any]:
    """Median CPU seconds (user + system, from ``getrusage(RUSAGE_CHILDREN)``) of CLI runs in a fresh process."""
    track = svc.catalog.tracks(limit=1)[0].id
    receipt = home / "cli-receipt.json"
    receipt.write_bytes(svc.ledger.receipt(track=track))
    env = {**os.environ, "CONSENTUNE_HOME": str(home), "CONSENTUNE_DATABASE_URL": svc.settings.database_url}
    verify = ["ledger", "verify", str(receipt), "--public-key", svc.ledger.verifier_key]
    return {
        "cli_runs": runs,
        "cli_help_cpu_s": _cli_cpu_s(["--help"], env, runs),
        "cli_verify_receipt_cpu_s": _cli_cpu_s(verify, env, runs),
        "cli_tracks_cpu_s": _cli_cpu_s(["tracks", "--limit", "1"], env, runs),  # opens the database: not light
    }


def _cli_cpu_s(args: list[str], env: dict[str, str], runs: int) -> float:
    spent = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [sys.executable, "-m", "consentune", *args], env=env, capture_output=True, text=True, check=False
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise ConsentuneError(
                f"`consentune {' '.join(args[:2])}` failed in the CLI benchmark: {done.stderr.strip()[-300:]}",
                hint="run that command by hand to see why",
            )
        spent.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(spent)


def _bench_decisions(n: int, rng: random.Random) -> dict[str, Any]:
    """Pure decide_batch over a synthetic catalogue: 1 artist per 10 tracks, rules for 20% of artists."""
    artists = [ArtistId(f"art_{i:08x}") for i in range(max(1, n // 10))]
    tracks = [TrackId(f"trk_{i:010x}") for i in range(n)]
    owner = {t: artists[i % len(artists)] for i, t in enumerate(tracks)}
    now = datetime.now(UTC)
    purpose = Purpose("recommend")
    rules = []
    for i, a in enumerate(rng.sample(artists, len(artists) // 5)):
        rules.append(ConsentRule(i, a, None, purpose, rng.random() < 0.5, now - timedelta(days=1)))
    for j, t in enumerate(rng.sample(tracks, n // 50)):
        rules.append(ConsentRule(10**7 + j, owner[t], t, purpose, rng.random() < 0.5, now - timedelta(hours=1)))
    context = ConsentContext({1: default_terms()}, owner, dict.fromkeys(artists, 1), rules)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        decide_batch(context, tracks=tracks, purpose=purpose, at=now)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    return {
        "consent_decisions": n,
        "consent_rules": len(rules),
        "consent_decide_s": best,
        "consent_decisions_per_s": n / best,
    }


__all__ = ["CEILINGS", "TARGETS", "run_core"]
