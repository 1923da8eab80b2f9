"""A job's message can arrive after its window closed (a model load that fails late): the
notifier still logs and keeps it, and never touches the deleted banner. Before, the late
message raised "Internal C++ object (QLabel) already deleted" in Qt's event loop."""

from __future__ import annotations

import shiboken6

from desktop.ui.notifier import Banner, Notifier


def test_a_message_after_the_banner_is_deleted_is_kept_not_shown(qtbot):
    banner = Banner()
    notifier = Notifier(banner)
    notifier.info("before")
    assert banner.label.text() == "before"
    shiboken6.delete(banner)  # what Qt does to a closed window's children
    shown = []
    notifier.shown.connect(lambda level, text: shown.append((level, text)))
    notifier.error("Model pack problem: the file is damaged")
    assert notifier.history[-1] == ("error", "Model pack problem: the file is damaged")
    assert shown == [("error", "Model pack problem: the file is damaged")]
