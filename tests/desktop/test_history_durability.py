"""The chat history survives SIGKILL in the middle of writes: 20 times, the database
opens, passes SQLite's integrity check, and holds every committed message."""

from __future__ import annotations

import sys

import pytest

from tests.kill_writes import kill_rounds


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_history_survives_sigkill_mid_write(tmp_path):
    result = kill_rounds(tmp_path / "history.sqlite3", rounds=20)
    assert result["problems"] == [], result
    assert result["survived"] == 20
    assert result["acknowledged"] >= 20 * 3  # real writes happened in every round
    assert result["killed_with_wal"] >= 10  # most kills left a log that reopening had to recover
