"""pytest-qt: Generate -> step previews -> image in the gallery (kept across restarts);
Cancel within a step; reproduce by dropping a PNG; morph frames saved as GIF/WebP."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs.image_meta import read_settings
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.tiny_latent import tiny_latent_pack
from tests.tiny_sd import tiny_sd_pack


@pytest.fixture
def ctx(cache_dir, atelier_home):
    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    return AppContext(Settings(), Notifier(), lib)


def make_studio(qtbot, ctx):
    from desktop.ui.image_studio import ImageStudio

    studio = ImageStudio(ctx)
    qtbot.addWidget(studio)
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    return studio


def set_up(studio, steps=3, size=(32, 32), seed="5"):
    c = studio.controls
    c.prompt.setPlainText("a red apple")
    c.negative.setPlainText("blurry")
    c.width_box.setValue(size[0])
    c.height_box.setValue(size[1])
    c.steps.setValue(steps)
    c.random_seed.setChecked(seed is None)
    if seed is not None:
        c.seed.setText(seed)


def test_generate_previews_every_step_and_fills_the_gallery(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    assert studio.controls.scheduler.count() == 5 and not studio.morph.isVisible()
    set_up(studio, steps=4)
    previews = []
    studio.preview_shown.connect(lambda i, n: previews.append((i, n)))
    with qtbot.waitSignal(studio.job_finished, timeout=60_000) as done:
        studio.generate()
    assert done.args[0].done
    assert previews == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert studio.gallery.count() == 1
    path = studio.gallery.paths()[0]
    settings = read_settings(path)["settings"]
    assert (settings["prompt"], settings["negative_prompt"], settings["steps"], settings["seed"]) == ("a red apple", "blurry", 4, 5)
    assert studio.preview.pixmap() is not None and not studio.preview.pixmap().isNull()
    studio.shutdown()
    # a restart: a new studio lists the same image
    again = make_studio(qtbot, ctx)
    assert again.gallery.paths() == [path]
    again.shutdown()


def test_cancel_stops_within_a_step(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    set_up(studio, steps=150, size=(64, 64))
    seen = []

    def on_preview(i, n):
        seen.append(i)
        if len(seen) == 2:
            studio.cancel_button.click()

    studio.preview_shown.connect(on_preview)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000) as done:
        studio.generate()
    assert done.args[0].stopped
    assert len(seen) <= 3  # at most the step already queued when Cancel was pressed
    assert studio.gallery.count() == 0 and studio.generate_button.isEnabled()
    studio.shutdown()


def test_ctrl_enter_generates_in_the_main_window(qtbot, ctx):
    from PySide6.QtTest import QTest

    from desktop.ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    studio = window.studios["Image"]
    window.tabs.setCurrentWidget(studio)
    window.show()
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    set_up(studio, steps=2)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        QTest.keyClick(studio.controls.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert studio.gallery.count() == 1
    window.close()


def drop(studio, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    studio.dropEvent(event)


def test_dropping_a_png_restores_its_settings_and_reproduces_the_pixels(qtbot, ctx, tmp_path):
    from PIL import Image

    studio = make_studio(qtbot, ctx)
    set_up(studio, steps=3, size=(40, 24), seed="77")
    studio.controls.guidance.setValue(5.5)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    first = studio.gallery.paths()[0]
    set_up(studio, steps=9, size=(64, 64), seed="1")
    studio.controls.prompt.setPlainText("something else")
    drop(studio, first)
    c = studio.controls
    assert (c.prompt.toPlainText(), c.steps.value(), c.width_box.value(), c.height_box.value(), c.seed.text(), c.guidance.value()) == ("a red apple", 3, 40, 24, "77", 5.5)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    second = studio.gallery.paths()[0]
    assert second != first
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
    studio.shutdown()


def test_dropping_a_bad_file_is_a_clear_error_and_changes_nothing(qtbot, ctx, tmp_path):
    studio = make_studio(qtbot, ctx)
    set_up(studio, steps=7)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for bad in (junk, text):
        drop(studio, bad)
    errors = [t for lvl, t in ctx.notifier.history if lvl == "error"]
    assert len(errors) == 2 and "Provenance problem" in errors[0] and "not a PNG" in errors[1]
    assert studio.controls.steps.value() == 7 and studio.controls.prompt.toPlainText() == "a red apple"
    studio.shutdown()


def test_bad_request_is_refused_before_starting(qtbot, ctx):
    studio = make_studio(qtbot, ctx)
    set_up(studio)
    studio.controls.prompt.setPlainText("")
    studio.generate()
    assert any("Type a prompt first" in t for lvl, t in ctx.notifier.history if lvl == "error")
    assert studio.slot.job is None and studio.generate_button.isEnabled()
    studio.shutdown()


def test_img2img_from_the_studio(qtbot, ctx, tmp_path):
    from PIL import Image

    studio = make_studio(qtbot, ctx)
    assert studio.controls.img2img_box.isVisibleTo(studio)
    init = tmp_path / "start.png"
    Image.fromarray(np.full((30, 50, 3), 120, np.uint8)).save(init)
    studio.controls.load_init_image(init)
    set_up(studio, steps=10)
    studio.controls.strength.setValue(50)
    previews = []
    studio.preview_shown.connect(lambda i, n: previews.append(n))
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    assert previews and previews[0] == 5  # half the steps at strength 0.5
    assert read_settings(studio.gallery.paths()[0])["settings"]["strength"] == 0.5
    studio.shutdown()


def test_morph_panel_for_latent_packs_saves_gif_and_webp(qtbot, ctx, tmp_path):
    from PIL import Image

    import_path(tiny_latent_pack(tmp_path / "latent"), ctx.library)
    studio = make_studio(qtbot, ctx)
    studio.controls.model.setCurrentText("tiny-latent")
    qtbot.waitUntil(lambda: studio.slot.name == "tiny-latent", timeout=60_000)
    assert studio.morph.isVisibleTo(studio) and studio.controls.class_label.count() == 4
    assert not studio.controls.img2img_box.isVisibleTo(studio)
    studio.controls.class_label.setCurrentIndex(2)  # "square"
    studio.morph.seed_a.setText("3")
    studio.morph.seed_b.setText("4")
    studio.morph.count.setValue(6)
    with qtbot.waitSignal(studio.morph_finished, timeout=60_000) as done:
        studio.morph.make.click()
    assert done.args[0].done and len(studio.morph.frames) == 6
    frames = studio.morph.frames
    assert not np.array_equal(frames[0], frames[-1]) and studio.morph.records[0]["class_label"] == "square"
    gif = studio.save_morph(str(tmp_path / "walk.gif"))
    webp = studio.save_morph(str(tmp_path / "walk.webp"))
    for path in (gif, webp):
        with Image.open(path) as im:
            assert im.n_frames == 6
    assert b"AI-generated" in gif.read_bytes() and b"trainedAlgorithmicMedia" in webp.read_bytes()
    # generating with a latent pack also lands in the gallery
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    assert studio.gallery.count() == 1
    studio.shutdown()


def test_large_gallery_loads_in_batches_newest_first(qtbot, tmp_path):
    import os

    from desktop.outputs.image_store import ImageStore
    from desktop.ui.image_gallery import BATCH, ImageGallery

    class Pack:
        name, pack_hash, precision = "p", "cd" * 32, "fp32"

    store = ImageStore(tmp_path / "images")
    paths = []
    for i in range(BATCH + 6):
        path = store.add(np.full((8, 8, 3), i, np.uint8), Pack(), {"seed": i, "prompt": "x"})
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        paths.append(str(path))
    gallery = ImageGallery(store)
    qtbot.addWidget(gallery)
    assert gallery.count() == BATCH  # the first batch at once, the rest later
    qtbot.waitUntil(lambda: gallery.count() == BATCH + 6, timeout=10_000)
    assert gallery.paths() == paths[::-1]
