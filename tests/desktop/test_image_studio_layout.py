"""The Image studio keeps to the smallest supported window (900×600) once a picture is shown:
the file name and seed under the preview once widened the window to 936 px (seen in a real
window), because a label's text set the column's minimum width."""

from __future__ import annotations

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier


def test_the_shown_seed_does_not_widen_the_window(qtbot, atelier_home):
    window = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(window)
    studio = window.studios["Image"]
    window.tabs.setCurrentWidget(studio)
    studio._show_seed(412641912, "img-20261129-233647-412641912.png")
    pane = studio.seed_label.parentWidget()  # the preview's pane: its minimum width was the text's plus the button's
    pane.layout().activate()
    assert pane.minimumSizeHint().width() < studio.seed_label.fontMetrics().horizontalAdvance(studio.seed_label.text()), pane.minimumSizeHint()
    assert window.minimumSizeHint().width() <= 900, window.minimumSizeHint()
    assert "412641912" in studio.seed_label.toolTip()  # the whole text stays reachable
