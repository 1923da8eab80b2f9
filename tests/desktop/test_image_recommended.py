"""The Image studio starts each model at its pack's recommended size, steps, guidance and
scheduler (a Turbo pack: 1 step, guidance 0), and keeps what the person set for a model this
session when they switch away and back. Real tiny Stable Diffusion packs, real engine loads."""

from __future__ import annotations

import shutil

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import read_manifest, write_manifest
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.tiny_sd import tiny_sd_pack


def variant(pack, folder, **config):
    """The tiny pack with other recommendations in its manifest, as an export would record them."""
    shutil.copytree(pack, folder, ignore=shutil.ignore_patterns("manifest.json"))
    manifest = read_manifest(pack)
    roles = {f["path"]: f.get("role", "") for f in manifest.pop("files")}
    manifest["config"] = {**manifest["config"], **config}
    write_manifest(folder, manifest, roles)
    return folder


@pytest.fixture
def studio(qtbot, cache_dir, tmp_path, atelier_home):
    from desktop.ui.image_studio import ImageStudio

    pack, lib = tiny_sd_pack(cache_dir), Library()
    import_path(variant(pack, tmp_path / "a", default_steps=20, default_guidance=7.5, default_scheduler="dpmpp_2m"), lib, name="tiny-base")
    import_path(variant(pack, tmp_path / "b", default_steps=1, default_guidance=0.0, default_scheduler="euler"), lib, name="tiny-turbo")
    s = ImageStudio(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(s)
    yield s
    s.shutdown()


def choose(qtbot, s, name):
    s.controls.model.setCurrentText(name)
    qtbot.waitUntil(lambda: s.slot.engine is not None and s.slot.name == name and s.controls._caps_model == name, timeout=60_000)


def values(c):
    return c.steps.value(), c.guidance.value(), c.scheduler.currentData(), (c.width_box.value(), c.height_box.value())


def test_each_model_starts_at_its_recommendations_and_keeps_what_the_person_set(qtbot, studio):
    c = studio.controls
    choose(qtbot, studio, "tiny-turbo")
    native = studio.slot.engine.capabilities.default_size
    assert values(c) == (1, 0.0, "euler", native)  # Turbo: one step, guidance off
    choose(qtbot, studio, "tiny-base")
    assert values(c) == (20, 7.5, "dpmpp_2m", native)  # not the Turbo's values carried over

    c.steps.setValue(33)  # the person's own choices for tiny-base
    c.scheduler.setCurrentIndex(c.scheduler.findData("ddim"))
    c.width_box.setValue(96)
    choose(qtbot, studio, "tiny-turbo")
    assert values(c) == (1, 0.0, "euler", native)  # tiny-base's edits are not the Turbo's
    choose(qtbot, studio, "tiny-base")
    assert values(c) == (33, 7.5, "ddim", (96, native[1]))  # kept for the session; the rest recommended
    request = c.request()
    assert (request.steps, request.scheduler, request.width) == (33, "ddim", 96)
