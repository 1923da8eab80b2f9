"""Settings -> Local API server is mounted on the Settings page, reachable by scrolling at
900x600, starts a real server, and stops with the window."""

from __future__ import annotations

import socket
import urllib.request

from PySide6.QtWidgets import QApplication

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_panel_is_in_settings_and_stops_when_the_window_closes(qtbot, atelier_home):
    window = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(window)
    page = window.studios["Settings"]
    panel = page.server_panel
    window.resize(900, 600)
    window.show()
    window.tabs.setCurrentWidget(page)
    qtbot.waitExposed(window)
    bar = page.scroll.verticalScrollBar()
    bar.setValue(bar.maximum())
    QApplication.processEvents()
    top_left = panel.toggle.mapTo(page.scroll.viewport(), panel.toggle.rect().topLeft())
    assert 0 <= top_left.y() < page.scroll.viewport().height()  # reachable at 900x600

    port = _free_port()
    panel.port.setValue(port)
    panel.toggle.setChecked(True)
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
    assert f":{port}/v1" in panel.status.text()
    asking = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {panel.key.text()}"})
    with urllib.request.urlopen(asking, timeout=10) as reply:
        assert reply.status == 200
    window.close()
    assert panel.server is None
    with socket.socket() as s:  # nothing listens on the port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
