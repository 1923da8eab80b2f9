"""Layout at the smallest supported window (900×600) and at 1600×1000, and the dark
theme's contrast: the window has no accidental minimum size, Settings scrolls to its last
group, the Welcome dialog shows all of its text, every label of the window is readable."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier
from desktop.ui.theme import apply_theme, dark_palette

SMALL, LARGE = (900, 600), (1600, 1000)
R = QPalette.ColorRole


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture
def window(qtbot, atelier_home):
    w = MainWindow(AppContext(Settings(), Notifier(), Library()))
    qtbot.addWidget(w)
    yield w
    apply_theme("light")


def test_window_fits_the_smallest_supported_size(window):
    hint = window.minimumSizeHint()
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], hint
    for title, studio in window.studios.items():
        h = studio.minimumSizeHint()
        assert h.width() <= SMALL[0] - 20 and h.height() <= SMALL[1] - 80, (title, h)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_settings_scroll_to_their_last_group(qtbot, window, size):
    window.resize(*size)
    window.show()
    page = window.studios["Settings"]
    window.tabs.setCurrentWidget(page)
    qtbot.waitExposed(window)
    assert window.width() == size[0] and window.height() == size[1]
    bar = page.scroll.verticalScrollBar()
    bar.setValue(bar.maximum())
    QApplication.processEvents()
    last = page.offline_status
    top_left = last.mapTo(page.scroll.viewport(), last.rect().topLeft())
    assert 0 <= top_left.y() < page.scroll.viewport().height()  # the last group can be reached


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_welcome_shows_all_its_text(qtbot, window, size, tmp_path):
    from desktop.ui.welcome import WelcomeDialog

    from desktop.engines.packs.importers import import_path
    from tests.desktop.app_helpers import data_pack

    # long lists of installed models: the lines that used to be cut off
    for i, modality in enumerate(("image", "image", "image", "image", "speech", "speech")):
        name = f"atelier-{modality}-pack-with-a-long-name-{i}"
        import_path(data_pack(tmp_path / name, name=name, modality=modality), window.ctx.library, name=name)
    window.resize(*size)
    window.show()
    dialog = WelcomeDialog(window.ctx, window)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=30_000)

    def cut_off() -> list:
        out = []
        for label in dialog.findChildren(QLabel):
            if label.isVisibleTo(dialog) and label.text():
                need = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
                if need > label.height() + 1:
                    out.append((label.text()[:40], need, label.height()))
        return out

    try:
        qtbot.waitUntil(lambda: not cut_off(), timeout=5_000)  # layout settles in a few events
    finally:
        assert not cut_off()
    assert dialog.width() <= size[0] and dialog.height() <= size[1]
    dialog.close()


def test_dark_palette_pairs_are_readable():
    p = dark_palette()
    for fg, bg in ((R.WindowText, R.Window), (R.Text, R.Base), (R.ButtonText, R.Button), (R.HighlightedText, R.Highlight), (R.ToolTipText, R.ToolTipBase), (R.Text, R.AlternateBase)):
        assert contrast(p.color(fg), p.color(bg)) >= 4.5, (fg, bg)
    assert contrast(p.color(R.PlaceholderText), p.color(R.Base)) >= 4.5
    for role in (R.Text, R.WindowText, R.ButtonText):  # greyed out, yet still legible
        assert contrast(p.color(QPalette.ColorGroup.Disabled, role), p.color(R.Window)) >= 3.0


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_every_label_in_the_window_is_readable(qtbot, window, theme):
    apply_theme(theme)
    window.show()
    for title in ("Image", "Speech", "Settings", "Library"):
        window.tabs.setCurrentWidget(window.studios[title])
        for label in window.studios[title].findChildren(QLabel):
            if not label.isVisibleTo(window) or not label.text():
                continue
            assert "color" not in label.styleSheet() or "white" in label.styleSheet(), (title, label.text()[:40], label.styleSheet())
            pal = label.palette()
            assert contrast(pal.color(R.WindowText), pal.color(R.Window)) >= 4.5, (title, label.text()[:40])
