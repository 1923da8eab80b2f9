"""The Settings toggle starts a real server (worker thread) and stops it again."""

from __future__ import annotations

import openai


def test_toggle_starts_and_stops_the_server(qtbot, api_library, monkeypatch, tmp_path):
    import socket

    from desktop.ui.server_panel import ServerPanel

    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    (tmp_path / "models").symlink_to(api_library, target_is_directory=True)
    with socket.socket() as s:  # a free port for the toggle's fixed-port server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    panel = ServerPanel()
    qtbot.addWidget(panel)
    panel.port.setValue(port)
    panel.toggle.setChecked(True)
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)
    assert f":{port}/v1" in panel.status.text()
    with openai.OpenAI(base_url=panel.server.url, api_key="x", max_retries=0) as client:
        assert "tiny-llama-fp32" in {m.id for m in client.models.list().data}
    panel.toggle.setChecked(False)
    qtbot.waitUntil(lambda: panel.server is None and panel.toggle.isEnabled(), timeout=30_000)
    assert panel.status.text() == "Off."
