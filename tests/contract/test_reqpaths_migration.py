"""Migration 0007_reqpaths on a database that already has tracks: positions and search are backfilled."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from consentune.storage import SqlStore, make_engine, migrate


def _run(engine: object, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("consentune.storage") / "migrations"))
    with engine.begin() as conn:  # type: ignore[attr-defined]
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def test_upgrade_backfills_positions_and_the_search_index(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    _run(engine, "downgrade", "0006")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO terms (version, kinds_json, summary, published_us) VALUES (1, '{}', '', 0)")
        conn.exec_driver_sql("INSERT INTO artists (id, name, terms_version, created_us) VALUES ('a1', 'Ada', 1, 0)")
        for n, (track, title) in enumerate((("t2", "Blue Monday"), ("t1", "Red Rain"))):
            values = f"'{track}', 'a1', '{title}', '{track}', 'flac', 1, 1, 1, 1, {n}"
            conn.exec_driver_sql(
                "INSERT INTO tracks (id, artist_id, title, content_sha256, format, duration_s, sample_rate, "
                f"channels, size_bytes, created_us) VALUES ({values})"
            )
    _run(engine, "upgrade", "head")
    store = SqlStore(engine)
    assert [(e.index, e.track.id) for e in store.catalog_page(after=-1, limit=10)] == [(0, "t2"), (1, "t1")]
    assert [e.track.id for e in store.search_catalog(["ada", "rai"], limit=10)] == ["t1"]
    engine.dispose()
