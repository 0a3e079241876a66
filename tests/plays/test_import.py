"""Play import: bad rows are reported by line, good rows kept, one transaction; CSV, Parquet, JSON API."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentune.errors import InvalidInput
from consentune.service import Consentune

HEADER = "user_id,track_id,played_at,ms_played,ip,device_id,user_agent,country\n"


@pytest.fixture
def track(svc: Consentune, audio_files: dict[str, bytes]) -> str:
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    return svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track.id


def _count(svc: Consentune, track: str) -> int:
    return sum(len(page) for page in svc.store.iter_plays([track]))  # type: ignore[arg-type]


def test_csv_keeps_good_rows_and_reports_bad_ones_by_line(svc: Consentune, track: str, tmp_path: Path) -> None:
    rows = [
        f"u1,{track},2026-11-01T10:00:00Z,183000,192.0.2.1,dev1,Firefox,FR",  # line 2 ok
        f"u2,{track},1793527200,30500,,,,",  # line 3 ok (unix seconds)
        f"u3,{track},yesterday,1000,,,,",  # line 4 bad time
        f"u4,{track},2026-11-01T10:00:00Z,-5,,,,",  # line 5 negative
        "u5,trk_nope,2026-11-01T10:00:00Z,1000,,,,",  # line 6 unknown track
        f"u6,{track},2026-11-01T10:00:00Z,1000,999.1.1.1,,,",  # line 7 bad ip
        f",{track},2026-11-01T10:00:00Z,1000,,,,",  # line 8 no user
        f"u8,{track},2026-11-01T10:00:00,1000,,,,",  # line 9 no time zone
        f"u9,{track},2999-01-01T00:00:00Z,1000,,,,",  # line 10 future
        f"u10,{track},2026-11-01T10:00:00Z,1000,,,,France",  # line 11 bad country
        f"u11,{track},1e300,1000,,,,",  # line 12 out of range
        f"u12,{track},inf,1000,,,,",  # line 13 out of range
        f"u13,{track},0001-01-01T00:00:00+01:00,1000,,,,",  # line 14 out of range
    ]
    path = tmp_path / "plays.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    report = svc.plays.import_file(path)
    assert report.imported == 2
    assert [e.line for e in report.errors] == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert "yesterday" in report.errors[0].message and "trk_nope" in report.errors[2].message
    assert _count(svc, track) == 2


def test_bad_files_store_nothing(svc: Consentune, track: str, tmp_path: Path) -> None:
    no_header = tmp_path / "a.csv"
    no_header.write_text(f"u1,{track},2026-11-01T10:00:00Z,1000\n")
    report = svc.plays.import_file(no_header)
    assert report.imported == 0 and report.errors[0].line == 1 and "header" in report.errors[0].message
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInput):
        svc.plays.import_file(binary)
    other = tmp_path / "c.xlsx"
    other.write_text("x")
    with pytest.raises(InvalidInput, match=r"csv or \.parquet"):
        svc.plays.import_file(other)
    assert _count(svc, track) == 0


def test_parquet_import(svc: Consentune, track: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "user_id": ["u1", "u2", "u3"],
        "track_id": [track, track, track],
        "played_at": ["2026-11-01T10:00:00Z", "2026-11-01T11:00:00+01:00", "not a time"],
        "ms_played": [1000, 2000, 3000],
    })  # fmt: skip
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    report = svc.plays.import_file(path)
    assert report.imported == 2 and [e.line for e in report.errors] == [3]


def test_api_batch_reports_rejected_indices(svc: Consentune, track: str) -> None:
    from fastapi.testclient import TestClient

    from consentune.api import create_app
    from consentune.types import Role

    key = svc.keys.create(role=Role.SERVICE)[1]
    client = TestClient(create_app(svc))
    body = {"plays": [
        {"user_id": "u1", "track_id": track, "played_at": "2026-11-01T10:00:00Z", "ms_played": 1000},
        {"user_id": "u2", "track_id": track, "played_at": "2026-11-01T10:00:00Z", "ms_played": "lots"},
    ]}  # fmt: skip
    r = client.post("/v1/plays", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json()["imported"] == 1
    assert r.json()["rejected"] == [{"index": 1, "error": "ms_played 'lots' is not a number"}]
    artist_key = svc.keys.create(role=Role.ARTIST, artist_id=svc.catalog.artist("Ada").id)[1]  # type: ignore[arg-type]
    assert client.post("/v1/plays", json=body, headers={"Authorization": f"Bearer {artist_key}"}).status_code == 403


def test_csv_the_csv_module_cannot_read_becomes_a_row_error_not_an_exception() -> None:
    from consentune.plays.parse import parse_csv

    header = "user_id,track_id,played_at,ms_played\n"
    bare_cr = parse_csv("user_id,track_id,pla%ed_at,ms_played,coun4\x00\x00\ruser_id,x\n")  # found by atheris
    assert bare_cr.errors and not bare_cr.events
    huge = parse_csv(header + "u,t,2026-01-01T00:00:00Z,5\n" + 'u,t,2026-01-01T00:00:00Z,"' + "x" * 200_000 + '"\n')
    assert len(huge.events) == 1
    assert [(e.line, "not valid CSV" in e.message) for e in huge.errors] == [(3, True)]
    quoted = parse_csv(header.replace("\n", "\r\n") + 'u,"trk\r\n1",2026-01-01T00:00:00Z,5\r\n')
    assert "control characters" in quoted.errors[0].message
