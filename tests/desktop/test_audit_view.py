"""The audit log viewer lists records and verifies the chain in a worker."""

from __future__ import annotations

import json

from desktop.outputs import audit
from desktop.ui.audit_view import AuditView


class _Pack:
    name = "viewer-pack"
    pack_hash = "cd" * 32


def test_viewer_lists_newest_first_and_verifies(qtbot):
    for i in range(3):
        audit.append("image", _Pack(), {"seed": i}, f"img {i}")
    view = AuditView()
    qtbot.addWidget(view)
    assert view.table.rowCount() == 3
    assert view.table.item(0, 0).text() == "2" and view.table.item(0, 3).text() == "viewer-pack"
    assert view.table.item(0, 4).toolTip() == "cd" * 32
    assert view.verify() is not None
    # the worker may finish before a waitSignal could connect: wait for its effect instead
    qtbot.waitUntil(lambda: view.last_report is not None and view.verify_button.isEnabled(), timeout=10000)
    assert view.last_report.ok and view.status.text().startswith("✓")


def test_viewer_shows_a_damaged_chain(qtbot):
    for i in range(3):
        audit.append("text", None, {"i": i}, str(i))
    lines = audit.log_path().read_text().splitlines(keepends=True)
    rec = json.loads(lines[1])
    rec["kind"] = "image"
    lines[1] = json.dumps(rec) + "\n"
    audit.log_path().write_text("".join(lines))
    view = AuditView()
    qtbot.addWidget(view)
    assert view.verify() is not None
    # the worker may finish before a waitSignal could connect: wait for its effect instead
    qtbot.waitUntil(lambda: view.last_report is not None and view.verify_button.isEnabled(), timeout=10000)
    assert not view.last_report.ok
    assert view.status.text().startswith("✗") and "edited" in view.status.text()
    assert view.verify_button.isEnabled()
