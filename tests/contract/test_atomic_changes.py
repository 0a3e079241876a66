"""A state change and its ledger entries commit together or not at all, on SQLite and PostgreSQL.

The failure is real and sits exactly between the two: a database trigger
refuses the ledger insert after the change itself was written in the same
transaction.  Afterwards neither may be visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, func, select, text

from consentune.service import Consentune
from consentune.storage import tables
from consentune.types import ORGANIZE, RECOMMEND, TRAIN_AI, Artist

_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_queue
BEGIN SELECT RAISE(ABORT, 'injected: the ledger append fails'); END
"""
_PG_FUNCTION = """
CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'injected: the ledger append fails'; END $$
"""
_PG_TRIGGER = "CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_queue FOR EACH ROW EXECUTE FUNCTION refuse_ledger()"


@contextmanager
def ledger_appends_fail(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(_SQLITE_TRIGGER))
        else:
            conn.execute(text(_PG_FUNCTION))
            conn.execute(text(_PG_TRIGGER))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER refuse_ledger" + ("" if engine.dialect.name == "sqlite" else " ON ledger_queue"))
            )
            if engine.dialect.name != "sqlite":
                conn.execute(text("DROP FUNCTION refuse_ledger()"))


def _count(svc: Consentune, table: str) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.metadata.tables[table])).scalar_one())


@contextmanager
def nothing_changes(svc: Consentune, *tables_: str) -> Iterator[None]:
    size = svc.ledger.size  # integrates what was queued before, so the counts below are settled
    before = {t: _count(svc, t) for t in (*tables_, "ledger_entries", "ledger_queue", "consent_state")}
    version = svc.store.consent_version()
    with pytest.raises(Exception, match="injected"):
        yield
    assert {t: _count(svc, t) for t in before} == before
    assert svc.store.consent_version() == version
    assert svc.ledger.size == size
    assert svc.ledger.audit().ok


@pytest.fixture
def ada(svc: Consentune) -> Artist:
    return svc.catalog.add_artist("Ada", actor="admin")


def test_no_consent_rule_is_in_force_without_its_ledger_entry(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title=None, actor="t").track
    with ledger_appends_fail(svc.store.engine):
        with nothing_changes(svc, "consent_rules", "purge_jobs"):
            svc.consent.set(ada, purpose=TRAIN_AI, allow=True, actor="artist:ada")
        with nothing_changes(svc, "consent_rules", "purge_jobs"):
            svc.consent.revoke(ada, purpose=RECOMMEND, actor="artist:ada", track=track.id)
    assert svc.gate.decide(purpose=TRAIN_AI, tracks=[track.id]).allowed.tolist() == [False]
    assert svc.gate.decide(purpose=RECOMMEND, tracks=[track.id]).allowed.tolist() == [True]
    svc.consent.set(ada, purpose=TRAIN_AI, allow=True, actor="artist:ada")  # works again once the ledger does
    assert svc.gate.decide(purpose=TRAIN_AI, tracks=[track.id]).allowed.tolist() == [True]


def test_terms_are_not_published_or_accepted_without_their_ledger_entry(svc: Consentune, ada: Artist) -> None:
    kinds = {p: k.value for p, k in svc.consent.current_terms().kinds.items()}
    with ledger_appends_fail(svc.store.engine), nothing_changes(svc, "terms"):
        svc.consent.publish_terms(dict(kinds, organize="opt-in"), summary="stricter", actor="admin")
    stricter = svc.consent.publish_terms(dict(kinds, organize="opt-in"), summary="stricter", actor="admin")
    with ledger_appends_fail(svc.store.engine), nothing_changes(svc, "purge_jobs"):
        svc.consent.accept_terms(ada, version=stricter.version, actor="artist:ada")
    assert svc.catalog.artist(ada.id).terms_version == ada.terms_version


def test_no_track_or_artist_exists_without_its_ledger_entry(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    with ledger_appends_fail(svc.store.engine):
        with nothing_changes(svc, "tracks", "uploads", "track_tags"):
            svc.catalog.ingest(audio_files["flac"], filename="a.flac", artist=ada, title=None, actor="t", tags=["x"])
        with nothing_changes(svc, "artists"):
            svc.catalog.add_artist("Bo", actor="admin")
    assert [p for p in svc.settings.blob_dir.rglob("*") if p.is_file()] == []  # no orphan original either


def test_derived_data_is_not_purged_without_its_ledger_entry(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title=None, actor="t").track
    write = svc.gate.request(actor="svc", purpose=ORGANIZE, tracks=[track.id], action="write-features")
    svc.gate.write_feature(write.allowed[0], "tempo", b"120")
    with ledger_appends_fail(svc.store.engine), nothing_changes(svc, "features"):
        svc.gate.purge(actor="system:test", purpose=ORGANIZE, tracks=[track.id])
    assert svc.store.get_feature(track.id, "tempo") is not None
    assert svc.gate.purge(actor="system:test", purpose=ORGANIZE, tracks=[track.id]) == 1
