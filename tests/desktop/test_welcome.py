"""First-run welcome: machine facts, installed and bundled models, shown once."""

from __future__ import annotations

import os

from desktop.engines.packs.library import Library
from desktop.ui.welcome import WelcomeDialog
from tests.desktop.app_helpers import ctx, data_pack  # noqa: F401 - fixture


def test_welcome_describes_the_machine_and_adds_bundled_models(qtbot, ctx, tmp_path, monkeypatch):  # noqa: F811
    shipped = tmp_path / "bundle-packs"
    data_pack(shipped / "voice", name="bundled-voice", modality="speech", validation={})
    monkeypatch.setenv("ATELIER_BUNDLED_PACKS", str(shipped))
    dialog = WelcomeDialog(ctx)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=20000)
    text = dialog.machine.text()
    assert f"{os.cpu_count()} CPU cores" in text and "ONNX Runtime offers: " in text and "CPU" in text
    assert "Speech: none installed yet" in dialog.installed.text()
    assert "bundled-voice" in dialog.bundled.text() and not dialog.add_button.isHidden()
    with qtbot.waitSignal(ctx.events.library_changed, timeout=20000):
        dialog.add_bundled()
    assert Library().first_of("speech") == "bundled-voice"
    assert "Speech: bundled-voice" in dialog.installed.text()
    assert "All bundled models are in your library" in dialog.bundled.text() and dialog.add_button.isHidden()


def test_welcome_is_shown_once(qtbot, monkeypatch, tmp_path):
    from desktop.ui.main_window import MainWindow

    monkeypatch.setenv("ATELIER_BUNDLED_PACKS", str(tmp_path / "none"))
    window = MainWindow()
    qtbot.addWidget(window)
    window.maybe_show_welcome()
    first = window.welcome
    assert first.isVisible() and "ships no models" in first.bundled.text()
    first.accept()
    assert WelcomeDialog.already_shown(window.ctx.settings)
    window.maybe_show_welcome()
    assert window.welcome is first  # no second dialog
