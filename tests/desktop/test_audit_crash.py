"""The audit log survives crashes, full disks, damage and planted links: a crash is never
reported as tampering, damage never stops later jobs from being recorded, and no write
goes through a symbolic link."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop.cli import main as cli_main
from desktop.engines.errors import ProvenanceError
from desktop.outputs import audit

ROOT = Path(__file__).resolve().parents[2]


def _fill(n: int) -> list[dict]:
    return [audit.append("image", None, {"i": i}, f"out {i}") for i in range(n)]


def _child(body: str, home: Path) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter with ``audit`` imported; it may os._exit()."""
    code = f"import os, sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom desktop.outputs import audit\n{body}\n"
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, ATELIER_HOME=str(home)), capture_output=True, text=True, timeout=120)


# -- a crash at each point of an append --------------------------------------------------------
def test_killed_between_record_and_head_is_not_tampering(atelier_home):
    _fill(3)
    proc = _child("audit._write_head = lambda *a: os._exit(9)\naudit.append('text', None, {}, 'x')", atelier_home)
    assert proc.returncode == 9
    report = audit.verify()
    assert report.ok and report.records == 4, report.problems
    assert "anchoring" in report.note
    audit.append("text", None, {}, "next")  # the next job anchors both
    report = audit.verify()
    assert report.ok and report.records == 5 and report.note == ""


def test_killed_before_the_first_record_was_anchored(atelier_home):
    proc = _child("real = audit._write_head\naudit._write_head = lambda log, seq, h: os._exit(9) if seq == 0 else real(log, seq, h)\naudit.append('text', None, {}, 'x')", atelier_home)
    assert proc.returncode == 9
    report = audit.verify()
    assert report.ok and report.records == 1, report.problems


def test_killed_mid_line_leaves_a_torn_line_that_the_next_job_cuts(atelier_home):
    _fill(2)
    body = "def half(fd, data):\n    os.write(fd, data[: len(data) // 2]); os._exit(9)\naudit._write_all = half\naudit.append('text', None, {}, 'x')"
    assert _child(body, atelier_home).returncode == 9
    report = audit.verify()
    assert report.ok and report.records == 2 and "interrupted" in report.note
    rec = audit.append("text", None, {}, "next")
    assert rec["seq"] == 2 and "notice" not in rec
    assert audit.verify().ok and audit.verify().records == 3


def test_random_kills_never_lose_an_acknowledged_record_or_report_tampering(atelier_home):
    body = "import itertools\nprint('ready', flush=True)\nfor i in itertools.count():\n    print(audit.append('text', None, {'i': i}, str(i))['hash'], flush=True)"
    rng = random.Random(1)
    acked: set[str] = set()
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", f"import os, sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom desktop.outputs import audit\n{body}"], env=dict(os.environ, ATELIER_HOME=str(atelier_home)), stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(1, 6)):
            acked.add(proc.stdout.readline().strip())
        time.sleep(rng.random() * 0.01)  # land somewhere inside the next append
        os.kill(proc.pid, signal.SIGKILL)
        acked.update(line.strip() for line in proc.stdout if line.strip())
        proc.wait()
        report = audit.verify()
        assert report.ok, f"round {round_}: {report.problems}"
        assert acked <= {r["hash"] for r in audit.records()}, f"round {round_}: an acknowledged record is missing"


# -- a full disk -----------------------------------------------------------------------------
def test_full_disk_on_the_head_keeps_the_record_and_is_not_tampering(atelier_home, monkeypatch):
    _fill(2)

    def no_space(*_a):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = audit._write_head
    monkeypatch.setattr(audit, "_write_head", no_space)
    rec = audit.append("text", None, {}, "x")  # recorded; only its anchor is missing
    assert rec["seq"] == 2
    monkeypatch.setattr(audit, "_write_head", real)  # (undo() would also drop ATELIER_HOME)
    report = audit.verify()
    assert report.ok and report.records == 3 and "full disk" in report.note


def test_full_disk_on_the_log_leaves_no_half_record(atelier_home, monkeypatch):
    _fill(2)

    def half_then_full(fd, data):
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    real = audit._write_all
    monkeypatch.setattr(audit, "_write_all", half_then_full)
    with pytest.raises(ProvenanceError, match="No space"):
        audit.append("text", None, {}, "x")
    assert audit.record_job("text", None, {}, "x") is None  # never raises into the job
    monkeypatch.setattr(audit, "_write_all", real)
    report = audit.verify()
    assert report.ok and report.records == 2 and report.note == ""


# -- damage ----------------------------------------------------------------------------------
def test_jobs_are_still_recorded_after_a_damaged_last_line(atelier_home, capsys, monkeypatch):
    _fill(3)
    with open(audit.log_path(), "a", encoding="utf-8") as fh:
        fh.write('{"seq": 3, "damaged\n')  # a complete but damaged line
    shown = []
    monkeypatch.setattr(audit, "_NOTICE_LISTENERS", [shown.append])
    monkeypatch.setattr(audit, "_NOTICED", set())
    rec = audit.record_job("speech", None, {}, "after the damage")
    assert rec is not None and rec["seq"] == 3 and "damaged" in rec["notice"]
    assert "note: The audit log has damaged lines" in capsys.readouterr().err  # visible
    assert shown == [rec["notice"]]  # and handed to the window's listener
    audit.append("speech", None, {}, "and another")
    report = audit.verify()
    assert report.records == 5 and report.problems == ["line 4 is not a valid record (damaged or edited)"]
    assert cli_main(["audit", "verify"]) == 1
    assert "line 4 is not a valid record" in capsys.readouterr().err


def test_an_edited_last_record_is_reported_and_later_jobs_chain_past_it(atelier_home):
    import json

    _fill(3)
    lines = audit.log_path().read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[-1])
    rec["kind"] = "edited"
    lines[-1] = json.dumps(rec, sort_keys=True) + "\n"
    audit.log_path().write_text("".join(lines), encoding="utf-8")
    assert audit.append("text", None, {}, "x")["seq"] == 2  # chains to the last intact record
    report = audit.verify()
    assert report.problems[0] == "line 3: record #2's contents do not match its hash (edited)"
    assert len(report.problems) == 1, report.problems


# -- links -----------------------------------------------------------------------------------
VICTIM = "someone else's file\nwithout a final newline"


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="O_NOFOLLOW is POSIX")
def test_a_symlinked_log_is_never_followed_or_truncated(atelier_home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    atelier_home.mkdir(parents=True, exist_ok=True)
    audit.log_path().symlink_to(victim)
    with pytest.raises(ProvenanceError, match="symbolic link"):
        audit.append("text", None, {}, "x")
    assert audit.record_job("text", None, {}, "x") is None
    assert victim.read_text() == VICTIM
    report = audit.verify()
    assert not report.ok and "symbolic link" in report.message()


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="O_NOFOLLOW is POSIX")
def test_symlinked_head_and_lock_are_not_written_through(atelier_home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    _fill(1)
    head = audit.log_path().with_name(audit.HEAD_NAME)
    head.unlink()
    head.symlink_to(victim)
    audit.append("text", None, {}, "x")  # the head is replaced by a real file, not written through
    assert victim.read_text() == VICTIM and not head.is_symlink()
    lock = audit.log_path().with_name(audit.LOG_NAME + ".lock")
    lock.unlink()
    lock.symlink_to(victim)
    with pytest.raises(ProvenanceError, match="symbolic link"):
        audit.append("text", None, {}, "y")
    assert victim.read_text() == VICTIM
