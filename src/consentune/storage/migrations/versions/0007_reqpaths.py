"""Request paths constant in catalogue size: catalogue positions, a full-text index, consent versions, rollups.

- ``tracks.pos``: the track's place in the public catalogue (dense, in upload
  order), so listing pages are keyset scans and a track's index is one lookup.
- Full-text search: SQLite FTS5 table ``tracks_fts`` (rowid = ``pos``);
  PostgreSQL ``tracks.search`` tsvector with a GIN index.  Triggers keep both
  current when a track is added, renamed or deleted, or its artist renamed.
- ``artists.consent_version`` and the single-row ``consent_state``: bumped in
  the same transaction as every consent change, so cached decisions know when
  they went stale.
- ``track_daily`` and ``artist_daily``: plays and recommendation impressions
  per (track, day) and per (artist, day), and ``artist_day_listeners``: the
  distinct listeners per (artist, day), maintained as plays and impressions
  arrive (the reach page reads these, never the plays or the ledger).

Revision ID: 0007_reqpaths
Revises: 0007_workers
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_reqpaths"
down_revision = "0007_workers"
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE tracks_fts USING fts5(title, artist, tokenize = 'unicode61 remove_diacritics 2', "
    "prefix = '1 2 3')",
    """CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
         INSERT INTO tracks_fts(rowid, title, artist)
         VALUES (new.pos, new.title, (SELECT name FROM artists WHERE id = new.artist_id));
       END""",
    """CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
         DELETE FROM tracks_fts WHERE rowid = old.pos;
       END""",
    """CREATE TRIGGER tracks_fts_update AFTER UPDATE OF title, artist_id, pos ON tracks BEGIN
         DELETE FROM tracks_fts WHERE rowid = old.pos;
         INSERT INTO tracks_fts(rowid, title, artist)
         VALUES (new.pos, new.title, (SELECT name FROM artists WHERE id = new.artist_id));
       END""",
    """CREATE TRIGGER artists_fts_rename AFTER UPDATE OF name ON artists BEGIN
         UPDATE tracks_fts SET artist = new.name WHERE rowid IN (SELECT pos FROM tracks WHERE artist_id = new.id);
       END""",
    "INSERT INTO tracks_fts(rowid, title, artist) "
    "SELECT t.pos, t.title, a.name FROM tracks t JOIN artists a ON a.id = t.artist_id",
]

_POSTGRES_FTS = [
    "CREATE SEQUENCE tracks_pos_seq OWNED BY tracks.pos",
    "SELECT setval('tracks_pos_seq', COALESCE((SELECT max(pos) FROM tracks), 0) + 1, false)",
    "ALTER TABLE tracks ALTER COLUMN pos SET DEFAULT nextval('tracks_pos_seq')",
    "ALTER TABLE tracks ADD COLUMN search tsvector",
    """CREATE FUNCTION tracks_search_doc() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.search := to_tsvector('simple',
           NEW.title || ' ' || COALESCE((SELECT name FROM artists WHERE id = NEW.artist_id), ''));
         RETURN NEW;
       END $$""",
    "CREATE TRIGGER tracks_search_doc BEFORE INSERT OR UPDATE OF title, artist_id ON tracks "
    "FOR EACH ROW EXECUTE FUNCTION tracks_search_doc()",
    """CREATE FUNCTION artists_search_doc() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE tracks SET title = title WHERE artist_id = NEW.id;
         RETURN NULL;
       END $$""",
    "CREATE TRIGGER artists_search_doc AFTER UPDATE OF name ON artists "
    "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION artists_search_doc()",
    "UPDATE tracks SET title = title",
    "CREATE INDEX ix_tracks_search ON tracks USING gin (search)",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("tracks", sa.Column("pos", sa.BigInteger, nullable=True))
    op.execute(
        "UPDATE tracks SET pos = r.n FROM "
        "(SELECT id, ROW_NUMBER() OVER (ORDER BY created_us, id) AS n FROM tracks) AS r WHERE r.id = tracks.id"
    )
    op.create_index("ix_tracks_pos", "tracks", ["pos"], unique=True)
    op.create_index("ix_tracks_artist_pos", "tracks", ["artist_id", "pos"])
    for statement in _POSTGRES_FTS if postgres else _SQLITE_FTS:
        op.execute(statement)
    op.add_column("artists", sa.Column("consent_version", sa.BigInteger, nullable=False, server_default="0"))
    # the single-row consent_state table comes from 0007_consistency (the same counter serves both)
    op.create_index("ix_consent_rules_purpose", "consent_rules", ["purpose", "allow"])
    op.create_index("ix_artists_terms", "artists", ["terms_version"])
    op.create_table(
        "track_daily",
        sa.Column("track_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("plays", sa.BigInteger, nullable=False),
        sa.Column("impressions", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "artist_daily",
        sa.Column("artist_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("plays", sa.BigInteger, nullable=False),
        sa.Column("listeners", sa.BigInteger, nullable=False),
        sa.Column("impressions", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "artist_day_listeners",
        sa.Column("artist_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(64), primary_key=True),
    )

    for statement in _BACKFILL:
        op.execute(statement)


_DAY = "CAST(p.played_us / 86400000000 AS INTEGER)"
_BACKFILL = [  # plays already stored; impressions start at zero (older ones live only in the ledger)
    f"INSERT INTO track_daily (track_id, day, plays, impressions) "
    f"SELECT p.track_id, {_DAY}, COUNT(*), 0 FROM plays p GROUP BY p.track_id, {_DAY}",
    f"INSERT INTO artist_day_listeners (artist_id, day, user_id) "
    f"SELECT DISTINCT t.artist_id, {_DAY}, p.user_id FROM plays p JOIN tracks t ON t.id = p.track_id",
    "INSERT INTO artist_daily (artist_id, day, plays, listeners, impressions) "
    "SELECT t.artist_id, d.day, SUM(d.plays), "
    "(SELECT COUNT(*) FROM artist_day_listeners l WHERE l.artist_id = t.artist_id AND l.day = d.day), 0 "
    "FROM track_daily d JOIN tracks t ON t.id = d.track_id GROUP BY t.artist_id, d.day",
]


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # the triggers name artists and tracks: they go before either table is rebuilt
    if postgres:
        op.execute("DROP TRIGGER artists_search_doc ON artists")
        op.execute("DROP TRIGGER tracks_search_doc ON tracks")
        op.execute("DROP FUNCTION artists_search_doc()")
        op.execute("DROP FUNCTION tracks_search_doc()")
        op.drop_index("ix_tracks_search", "tracks")
        op.drop_column("tracks", "search")
        op.execute("ALTER TABLE tracks ALTER COLUMN pos DROP DEFAULT")
    else:
        for trigger in ("tracks_fts_insert", "tracks_fts_delete", "tracks_fts_update", "artists_fts_rename"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE tracks_fts")
    for table in ("artist_day_listeners", "artist_daily", "track_daily"):
        op.drop_table(table)
    op.drop_index("ix_consent_rules_purpose", "consent_rules")
    op.drop_index("ix_artists_terms", "artists")
    # plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of artists would trip the tracks foreign key
    op.execute("ALTER TABLE artists DROP COLUMN consent_version")
    op.drop_index("ix_tracks_artist_pos", "tracks")
    op.drop_index("ix_tracks_pos", "tracks")
    op.execute("ALTER TABLE tracks DROP COLUMN pos")
