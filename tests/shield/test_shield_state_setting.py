"""``CONSENTUNE_SHIELD_STATE`` picks where the shield's state lives; bad values fail with the choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.errors import InvalidInput
from consentune.service import open_service
from consentune.shield.shareddetect import SharedScraperDetector


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}",
                    identify_at_ingest=False, **extra)  # type: ignore[arg-type]  # fmt: skip


def test_the_default_is_in_process_and_file_shares_one_state_file(tmp_path: Path) -> None:
    alone = open_service(_settings(tmp_path))
    try:
        assert not isinstance(alone.listen.guard._detector, SharedScraperDetector)
    finally:
        alone.close()
    shared = open_service(_settings(tmp_path, shield_state="file"))
    try:
        assert isinstance(shared.listen.guard._detector, SharedScraperDetector)
        assert (tmp_path / "home" / "shield-state.sqlite3").is_file()
    finally:
        shared.close()


def test_the_setting_is_read_from_the_environment(tmp_path: Path) -> None:
    env = {"CONSENTUNE_HOME": str(tmp_path), "CONSENTUNE_SHIELD_STATE": " File "}
    assert Settings.from_env(env).shield_state == "file"


@pytest.mark.parametrize(("value", "words"), [("disk", "is not a choice"), ("redis", "needs CONSENTUNE_REDIS_URL")])
def test_bad_values_name_the_fix(tmp_path: Path, value: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        _settings(tmp_path, shield_state=value)
    assert caught.value.hint
