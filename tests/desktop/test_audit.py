"""The hash-chained audit log: every edit or removal is detected; jobs append to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli import main as cli_main
from desktop.outputs import audit
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


class _Pack:
    name = "p"
    pack_hash = "ab" * 32


def _fill(n: int = 5) -> list[dict]:
    return [audit.append("image", _Pack(), {"steps": i}, f"output {i}".encode()) for i in range(n)]


def _lines() -> list[str]:
    return audit.log_path().read_text(encoding="utf-8").splitlines(keepends=True)


def test_intact_log_verifies_and_records_link_up():
    recs = _fill()
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4]
    assert all(b["prev"] == a["hash"] for a, b in zip(recs, recs[1:]))
    assert recs[2]["settings_sha256"] == audit.settings_hash({"steps": 2})
    report = audit.verify()
    assert report.ok and report.records == 5, report.problems


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("edit", "edited"),
        ("remove-middle", "removed"),
        ("remove-last", "removed"),
        ("swap", "expected"),
        ("garbage", "not a valid record"),
        ("delete-log", "missing"),
    ],
)
def test_any_edit_or_removal_is_detected(damage, expected):
    _fill()
    lines = _lines()
    path = audit.log_path()
    if damage == "edit":
        rec = json.loads(lines[2])
        rec["output_sha256"] = "0" * 64
        lines[2] = json.dumps(rec, sort_keys=True) + "\n"
    elif damage == "remove-middle":
        del lines[1]
    elif damage == "remove-last":
        del lines[-1]
    elif damage == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif damage == "garbage":
        lines[3] = "{not json\n"
    if damage == "delete-log":
        path.unlink()
    else:
        path.write_text("".join(lines), encoding="utf-8")
    report = audit.verify()
    assert not report.ok
    assert expected in report.message(), report.message()


def test_a_torn_last_write_is_not_tampering_and_the_chain_continues():
    _fill(3)
    with open(audit.log_path(), "a", encoding="utf-8") as fh:
        fh.write('{"seq": 3, "kind": "ima')  # the app was killed mid-write
    report = audit.verify()
    assert report.ok and report.records == 3 and "interrupted" in report.note
    audit.append("text", None, {}, "next")
    report = audit.verify()
    assert report.ok and report.records == 4 and not report.note


def test_concurrent_writers_keep_one_chain(atelier_home):
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from desktop.outputs import audit\n"
        "for i in range(40): audit.append('text', None, {'i': i}, str(i))\n"
    ) % str(ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    report = audit.verify()
    assert report.ok and report.records == 120, report.problems


def test_cli_audit_verify_and_list(capsys):
    _fill(2)
    assert cli_main(["audit", "verify"]) == 0
    assert "intact: 2 record(s)" in capsys.readouterr().out
    assert cli_main(["audit", "list"]) == 0
    assert "#1" in capsys.readouterr().out
    lines = _lines()
    audit.log_path().write_text(lines[0], encoding="utf-8")
    assert cli_main(["audit", "verify"]) == 1
    assert "DAMAGED" in capsys.readouterr().err


def test_record_job_never_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "file-not-dir"))
    (tmp_path / "file-not-dir").write_text("x")
    assert audit.record_job("image", None, {}, b"x") is None


def test_cli_text_job_is_audited(tiny_text_pack, capsys):  # noqa: F811
    assert cli_main(["text", "--model", str(tiny_text_pack), "--prompt", "Hi", "--max-tokens", "4", "--seed", "1"]) == 0
    reply = capsys.readouterr().out.rstrip("\n")
    recs = list(audit.records())
    # one job name per modality: the chat studio records replies as "chat" too
    assert len(recs) == 1 and recs[0]["kind"] == "chat" and recs[0]["pack"] == "tiny-llama"
    assert recs[0]["output_sha256"] == audit.output_hash(reply)
    assert audit.verify().ok
