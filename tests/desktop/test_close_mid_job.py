"""Closing the window while an image batch or a speech clip is being made stops the job and
stores what exists before shutdown: the finished images of the batch, and the audio so
far as a clip marked stopped. Real tiny models, the real window's close()."""

from __future__ import annotations

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs.clip_store import ClipStore
from desktop.outputs.image_store import ImageStore
from desktop.settings import Settings
from desktop.ui.main_window import AppContext, MainWindow
from desktop.ui.notifier import Notifier
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.tiny_sd import tiny_sd_pack

pytest.importorskip("transformers")


@pytest.fixture
def no_audio_device(monkeypatch):
    import desktop.audio as audio

    def missing():
        raise audio.PlaybackUnavailable("no PortAudio here")

    monkeypatch.setattr(audio, "_sounddevice", missing)


def test_closing_mid_batch_keeps_the_finished_images(qtbot, cache_dir, atelier_home):
    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    window = MainWindow(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(window)
    studio = window.studios["Image"]
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    c = studio.controls
    c.prompt.setPlainText("a red apple")
    c.width_box.setValue(32)
    c.height_box.setValue(32)
    c.steps.setValue(2)
    c.batch.setValue(16)
    with qtbot.waitSignal(studio.image_added, timeout=60_000):
        studio.generate()
    window.close()  # mid-batch: 16 images were asked for
    stored = ImageStore().paths()
    assert studio.slot.job is None and studio.slot.engine is None  # stopped, then closed
    assert 1 <= len(stored) < 16
    # everything the job made was stored before close() returned: nothing arrives later
    qtbot.wait(200)
    assert len(ImageStore().paths()) == len(stored) == studio.gallery.count()


def test_closing_mid_clip_stores_the_audio_so_far_as_a_stopped_clip(qtbot, tiny_voice, atelier_home, no_audio_device):  # noqa: F811
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    window = MainWindow(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(window)
    studio = window.studios["Speech"]
    qtbot.waitUntil(lambda: studio.runner.engine is not None, timeout=60_000)
    studio.text.setPlainText(" ".join(f"this is sentence number {i}." for i in range(200)))
    received = []
    studio.runner.chunk.connect(lambda ev: received.append(ev.samples.size))
    studio.speak()
    qtbot.waitUntil(lambda: bool(received), timeout=60_000)
    window.close()
    clips = ClipStore().clips()
    assert len(clips) == 1
    clip = clips[0]
    assert clip.record["settings"]["stopped"] is True
    assert clip.samples.size == sum(received) > 0  # every chunk that was made, no more
    assert studio.runner.slot.job is None and studio.runner.engine is None
