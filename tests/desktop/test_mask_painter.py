"""The inpainting mask painter: real widgets and mouse drags - paint, erase, brush size, clear;
the studio's Generate carries the painted mask and the picture changes only under it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest

from desktop.ui.mask_painter import MaskPainter

INIT = np.random.default_rng(3).uniform(0, 255, (32, 32, 3)).astype(np.uint8)


def drag(widget, a: QPoint, b: QPoint, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mousePress(widget, button, Qt.KeyboardModifier.NoModifier, a)
    for k in range(1, 9):
        QTest.mouseMove(widget, a + (b - a) * k / 8)
    QTest.mouseRelease(widget, button, Qt.KeyboardModifier.NoModifier, b)


@pytest.fixture
def painter(qtbot):
    p = MaskPainter(INIT)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_paint_erase_and_clear(painter):
    canvas = painter.canvas
    painter.brush.setValue(4)
    w, h = canvas.width(), canvas.height()
    assert painter.mask() is None
    drag(canvas, QPoint(int(w * 0.2), h // 2), QPoint(int(w * 0.8), h // 2))
    m = painter.mask()
    assert m is not None and m.shape == (32, 32) and set(np.unique(m)) == {0, 255}
    assert m[16, 8:24].all() and not m[2].any()  # a horizontal band through the middle, nothing at the top
    painted = int((m > 0).sum())
    painter.erase.setChecked(True)
    drag(canvas, QPoint(w // 2, int(h * 0.3)), QPoint(w // 2, int(h * 0.7)))
    assert 0 < int((painter.mask() > 0).sum()) < painted and not painter.mask()[16, 15:17].any()
    painter.erase.setChecked(False)
    painter.brush.setValue(8)  # a wider brush paints a wider band
    drag(canvas, QPoint(int(w * 0.2), int(h * 0.2)), QPoint(int(w * 0.8), int(h * 0.2)))
    assert painter.mask()[3:8, 16].all()
    painter.clear_button.click()
    assert painter.mask() is None


def test_right_drag_erases(painter):
    canvas = painter.canvas
    w, h = canvas.width(), canvas.height()
    drag(canvas, QPoint(int(w * 0.2), h // 2), QPoint(int(w * 0.8), h // 2))
    drag(canvas, QPoint(int(w * 0.2), h // 2), QPoint(int(w * 0.8), h // 2), Qt.MouseButton.RightButton)
    assert painter.mask() is None


def test_studio_generates_with_the_painted_mask(qtbot, cache_dir, atelier_home):
    from desktop.engines.events import ImageResult
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from desktop.settings import Settings
    from desktop.ui.image_studio import ImageStudio
    from desktop.ui.main_window import AppContext
    from desktop.ui.notifier import Notifier
    from tests.tiny_sd import tiny_sd_pack

    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    studio = ImageStudio(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(studio)
    studio.show()
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    c = studio.controls
    c.prompt.setPlainText("a red apple")
    c.width_box.setValue(32)
    c.height_box.setValue(32)
    c.steps.setValue(2)
    c.set_init_image(INIT, "init.png")
    painted = []

    def paint_and_accept():  # runs inside the modal dialog's event loop, as a person would
        from PySide6.QtWidgets import QApplication

        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, paint_and_accept)
            return
        w, h = dialog.canvas.width(), dialog.canvas.height()
        dialog.brush.setValue(10)
        drag(dialog.canvas, QPoint(int(w * 0.35), h // 2), QPoint(int(w * 0.65), h // 2))
        painted.append(True)
        dialog.accept()

    QTimer.singleShot(0, paint_and_accept)
    c.mask_button.click()
    assert painted and c.mask is not None and "✓" in c.mask_button.text()
    mask = c.mask
    assert mask[16, 16] == 255 and mask[0, 0] == 0
    request = c.request()
    assert request.mask is mask
    result = next(ev.image for ev in studio.slot.engine.generate(request) if isinstance(ev, ImageResult))
    keep = mask == 0
    assert np.array_equal(result[keep], INIT[keep]) and not np.array_equal(result[~keep], INIT[~keep])
    c.set_init_image(None)
    assert c.mask is None and not c.mask_button.isEnabled()
    studio.shutdown()
