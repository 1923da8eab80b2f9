"""An export the app started ends when the app is killed outright (nothing else would stop a
long conversion nobody will take); one started by a person from a shell is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The "app": starts an export-like child the way the app does (own session, the app's pid in
# the environment), prints the child's pid, then waits to be killed.
APP = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=dict(os.environ, ATELIER_PARENT_PID=str(os.getpid())), start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""
EXPORT = "from exporters.parent_watch import exit_with_parent; exit_with_parent(); import time; time.sleep(120)"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; whoever adopted it reaps it


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_export_ends_when_the_app_is_killed():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    app = subprocess.Popen([sys.executable, "-c", APP, EXPORT], stdout=subprocess.PIPE, text=True, env=env)
    child = int(app.stdout.readline())
    try:
        assert _running(child)
        assert not _wait_gone(child, 1.5)  # alive while the app is
        app.send_signal(signal.SIGKILL)
        app.wait(10)
        assert _wait_gone(child, 10), "the export outlived the app"
    finally:
        if _running(child):
            os.kill(child, signal.SIGKILL)


def test_an_export_run_from_a_shell_has_no_watch(monkeypatch):
    from exporters.parent_watch import PARENT_ENV, exit_with_parent

    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert exit_with_parent() is None
