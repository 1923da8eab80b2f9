"""Settings -> Local API server: the toggle starts a real server (worker thread) that asks
for the generated key, the live log shows each request newest first, regenerating asks
first, and turning it off stops it again."""

from __future__ import annotations

import os
import socket
import stat

import openai
import pytest

TEXT = "tiny-llama-fp32"


def _free_port() -> int:
    with socket.socket() as s:  # a free port for the toggle's fixed-port server
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def panel(qtbot, api_library, monkeypatch, tmp_path):
    from desktop.ui.server_panel import ServerPanel

    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    (tmp_path / "models").symlink_to(api_library, target_is_directory=True)
    p = ServerPanel()
    qtbot.addWidget(p)
    p.port.setValue(_free_port())
    yield p
    p.shutdown()


def _turn_on(qtbot, panel):
    panel.toggle.setChecked(True)
    qtbot.waitUntil(lambda: panel.server is not None, timeout=60_000)


def test_first_enable_generates_an_owner_only_key_and_the_server_asks_for_it(qtbot, panel, tmp_path):
    from desktop.server.api_key import key_path

    assert panel.key.text() == "" and not panel.copy_key.isEnabled()  # no key before the first enable
    _turn_on(qtbot, panel)
    key = panel.key.text()
    assert key.startswith("atelier-") and len(key) > 40
    assert key_path().read_text().strip() == key
    if os.name == "posix":
        assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    assert f":{panel.port.value()}/v1" in panel.status.text() and panel.url.text() == panel.server.url
    with openai.OpenAI(base_url=panel.url.text(), api_key="wrong-key-123", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    with openai.OpenAI(base_url=panel.url.text(), api_key=key, max_retries=0) as client:
        assert TEXT in {m.id for m in client.models.list().data}

    panel.copy_key.click()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == key

    panel.toggle.setChecked(False)
    qtbot.waitUntil(lambda: panel.server is None and panel.toggle.isEnabled(), timeout=30_000)
    assert panel.status.text() == "Off."
    again = type(panel)()  # the key is kept: a second panel (next start of the app) shows the same one
    qtbot.addWidget(again)
    assert again.key.text() == key


def test_the_log_shows_each_request_newest_first_with_model_status_and_tokens(qtbot, panel):
    from desktop.ui.server_panel import COLUMNS

    _turn_on(qtbot, panel)
    col = {name: i for i, name in enumerate(COLUMNS)}
    with openai.OpenAI(base_url=panel.server.url, api_key="not-the-key", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    with openai.OpenAI(base_url=panel.server.url, api_key=panel.key.text(), max_retries=0) as client:
        stream = client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "hi"}], max_tokens=5,
                                                stream=True, extra_body={"ignore_eos": True})
        assert sum(1 for _ in stream) >= 1
    qtbot.waitUntil(lambda: panel.log.rowCount() == 2, timeout=10_000)
    cell = lambda row, name: panel.log.item(row, col[name]).text()  # noqa: E731
    assert (cell(0, "Method"), cell(0, "Path"), cell(0, "Model"), cell(0, "Status"), cell(0, "Tokens")) == ("POST", "/v1/chat/completions", TEXT, "200", "5")
    assert cell(0, "Duration").endswith(" s")
    assert (cell(1, "Path"), cell(1, "Status")) == ("/v1/models", "401")


def test_the_log_is_bounded(qtbot, panel):
    from desktop.server.request_log import RequestRow
    from desktop.ui.server_panel import LOG_ROWS

    for i in range(LOG_ROWS + 7):
        panel.row_arrived.emit(RequestRow(0.0, "GET", f"/v1/models/{i}", None, 200, 0.01, None))
    qtbot.waitUntil(lambda: panel.log.item(0, 2) is not None and panel.log.item(0, 2).text().endswith(f"/{LOG_ROWS + 6}"), timeout=10_000)
    assert panel.log.rowCount() == LOG_ROWS


def test_regenerate_asks_first_and_the_running_server_takes_the_new_key(qtbot, panel, monkeypatch):
    _turn_on(qtbot, panel)
    old = panel.key.text()
    monkeypatch.setattr(panel, "confirm_regenerate", lambda: False)
    panel.regenerate.click()
    assert panel.key.text() == old  # declined: nothing changed

    monkeypatch.setattr(panel, "confirm_regenerate", lambda: True)
    panel.regenerate.click()
    new = panel.key.text()
    assert new != old
    with openai.OpenAI(base_url=panel.server.url, api_key=old, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    with openai.OpenAI(base_url=panel.server.url, api_key=new, max_retries=0) as client:
        assert client.models.list().data
