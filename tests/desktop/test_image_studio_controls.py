"""Image studio controls found dead in a real-window pass: the seed of a random picture is
shown and copyable; one click on a gallery thumbnail views it; an armed img2img starting
image is marked above the prompt with a "×" that disarms it; "Save as…" opens in the
output folder. Real tiny Stable Diffusion pack, real widgets and clicks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs.image_meta import read_settings
from desktop.settings import AppSettings, Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.tiny_sd import tiny_sd_pack


@pytest.fixture
def studio(qtbot, cache_dir, atelier_home):
    from desktop.ui.image_studio import ImageStudio

    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    s = ImageStudio(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(s)
    s.show()
    qtbot.waitUntil(lambda: s.slot.engine is not None, timeout=60_000)
    c = s.controls
    c.prompt.setPlainText("a red apple")
    c.width_box.setValue(32)
    c.height_box.setValue(32)
    c.steps.setValue(2)
    yield s
    s.shutdown()


def generate(qtbot, s, batch=1):
    s.controls.random_seed.setChecked(True)
    s.controls.batch.setValue(batch)
    with qtbot.waitSignal(s.job_finished, timeout=60_000):
        qtbot.mouseClick(s.generate_button, Qt.MouseButton.LeftButton)


def test_random_seed_is_shown_and_copied(qtbot, studio):
    generate(qtbot, studio)
    seed = read_settings(studio.gallery.paths()[0])["settings"]["seed"]
    assert studio.shown_seed == seed and str(seed) in studio.seed_label.text()
    qtbot.mouseClick(studio.copy_seed_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(seed)


def test_one_click_on_a_thumbnail_views_it(qtbot, studio):
    generate(qtbot, studio, batch=2)
    first, second = studio.gallery.paths()
    studio.preview.clear_image()
    rect = studio.gallery.visualItemRect(studio.gallery.item(1))
    qtbot.mouseClick(studio.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert studio.preview.pixmap() is not None and not studio.preview.pixmap().isNull()
    assert studio.shown_seed == read_settings(second)["settings"]["seed"]


def test_armed_starting_image_is_marked_and_the_x_disarms_it(qtbot, studio, tmp_path):
    c = studio.controls
    assert not c.armed_chip.isVisibleTo(studio)
    init = tmp_path / "img-20261129-181431-2950169093-a-long-generated-name.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(init)
    studio.resize(900, 560)
    c.load_init_image(init)
    assert c.armed_chip.isVisibleTo(studio) and "…" in c.armed_label.text() and c.armed_chip.toolTip() == init.name
    QApplication.processEvents()
    # the × stays inside the visible settings column (a long name once pushed it out of sight)
    column = c.parentWidget().parentWidget()  # the scroll area's viewport
    assert c.armed_clear.mapTo(column, c.armed_clear.rect().bottomRight()).x() <= column.width()
    assert c.request().init_image is not None
    qtbot.mouseClick(c.armed_clear, Qt.MouseButton.LeftButton)
    assert not c.armed_chip.isVisibleTo(studio) and c.request().init_image is None
    generate(qtbot, studio)
    assert read_settings(studio.gallery.paths()[0])["settings"].get("strength") is None  # plain txt2img


def test_save_as_opens_in_the_output_folder(qtbot, studio, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    studio.ctx.settings.save(AppSettings(output_dir=str(out)))
    generate(qtbot, studio)
    studio.gallery.setCurrentRow(0)
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda _p, _t, start, _f: (asked.append(start), (str(out / "kept.png"), ""))[1]))
    qtbot.mouseClick(next(b for b in studio.selection_buttons if b.text() == "Save as…"), Qt.MouseButton.LeftButton)
    assert asked and asked[0].startswith(str(out)) and (out / "kept.png").is_file()
