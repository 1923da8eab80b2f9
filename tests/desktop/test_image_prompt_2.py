"""The Image studio's "Prompt 2 (style)" line: shown for SDXL packs only (their second text
encoder reads it), hidden for SD 1.x packs; what is typed there reaches the engine and the
saved PNG's record, and reproducing that PNG fills it back. Real tiny SD and SDXL packs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("diffusers")  # the tiny SDXL pack is built with it

from desktop.engines.packs.importers import import_path  # noqa: E402
from desktop.engines.packs.library import Library  # noqa: E402
from desktop.outputs.image_meta import read_settings  # noqa: E402
from desktop.settings import Settings  # noqa: E402
from desktop.ui.main_window import AppContext  # noqa: E402
from desktop.ui.notifier import Notifier  # noqa: E402
from tests.tiny_sd import tiny_sd_pack  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_pack  # noqa: E402


@pytest.fixture
def studio(qtbot, cache_dir, atelier_home):
    from desktop.ui.image_studio import ImageStudio

    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    import_path(tiny_sdxl_pack(cache_dir), lib, name="tiny-sdxl")
    s = ImageStudio(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(s)
    s.show()
    yield s
    s.shutdown()


def choose(qtbot, s, name):
    s.controls.model.setCurrentText(name)
    qtbot.waitUntil(lambda: s.slot.engine is not None and s.slot.name == name and s.controls._caps_model == name, timeout=60_000)


def test_prompt_2_shows_for_sdxl_only_and_reaches_the_saved_record(qtbot, studio):
    c = studio.controls
    choose(qtbot, studio, "tiny-sd")
    assert not c.prompt_2.isVisibleTo(studio) and not c.negative_2.isVisibleTo(studio)
    c.prompt_2.setText("left over")  # typed for another model: an SD 1.x request never carries it
    assert c.request().prompt_2 == ""

    choose(qtbot, studio, "tiny-sdxl")
    assert c.prompt_2.isVisibleTo(studio) and c.negative_2.isVisibleTo(studio)
    c.prompt.setPlainText("a red apple")
    c.prompt_2.setText("oil painting")
    c.negative_2.setText("blurry")
    for box, value in ((c.width_box, 32), (c.height_box, 32), (c.steps, 2)):
        box.setValue(value)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        qtbot.mouseClick(studio.generate_button, Qt.MouseButton.LeftButton)
    settings = read_settings(studio.gallery.paths()[0])["settings"]
    assert (settings["prompt_2"], settings["negative_prompt_2"]) == ("oil painting", "blurry")

    c.prompt_2.clear()
    c.negative_2.clear()
    c.apply_settings(settings)  # what "reproduce" does with a file's settings
    assert (c.prompt_2.text(), c.negative_2.text()) == ("oil painting", "blurry")
