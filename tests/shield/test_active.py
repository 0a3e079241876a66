"""One active stream per listener identity."""

from __future__ import annotations

import pytest

from consentune.config import Settings
from consentune.errors import InvalidInput, StreamSuperseded
from consentune.shield.active import ActivePlays, listener_identity


def test_the_latest_play_is_the_only_one_that_streams() -> None:
    plays = ActivePlays()
    me = listener_identity(session_id="s1", account_id="acc")
    plays.start(me, "first")
    plays.check(me, "first")
    plays.start(listener_identity(session_id="s2", account_id="acc"), "second")  # same account, another device
    with pytest.raises(StreamSuperseded) as err:
        plays.check(me, "first")
    assert err.value.hint
    plays.check(me, "second")
    plays.check(listener_identity(session_id="s1", account_id=None), "anything")  # never started: not known


def test_identities_are_bounded_and_forgotten_ones_pass() -> None:
    plays = ActivePlays(max_identities=2)
    for n in range(3):
        plays.start(f"session:{n}", f"p{n}")
    plays.check("session:0", "stale")  # forgotten: nothing to supersede
    with pytest.raises(StreamSuperseded):
        plays.check("session:2", "stale")


def test_anonymous_audio_policy_is_validated() -> None:
    assert Settings.from_env({"CONSENTUNE_HOME": "/tmp/x"}).anonymous_audio == "none"
    assert Settings.from_env({"CONSENTUNE_HOME": "/tmp/x", "CONSENTUNE_ANONYMOUS_AUDIO": "Preview"}).anonymous_audio \
        == "preview"  # fmt: skip
    with pytest.raises(InvalidInput):
        Settings.from_env({"CONSENTUNE_HOME": "/tmp/x", "CONSENTUNE_ANONYMOUS_AUDIO": "some"})
