"""The Library's details for an image pack: base model, native size, recommended steps, guidance
and scheduler, and the licence with its text reachable - all from the manifest."""

from __future__ import annotations

import os

from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import write_manifest
from desktop.ui.library import LibraryPage
from tests.desktop.app_helpers import ctx, data_pack  # noqa: F401 - ctx is a fixture


def image_pack(folder, name, config, licence, files=None):
    folder.mkdir(parents=True)
    (folder / "unet.onnx").write_bytes(os.urandom(64))
    roles = {"unet.onnx": "unet"}
    for rel, text in (files or {}).items():
        (folder / rel).write_text(text, encoding="utf-8")
        roles[rel] = ""
    write_manifest(folder, {"name": name, "modality": "image", "architecture": "stable-diffusion", "runtime": "onnxruntime",
                            "precision": "fp16", "license": licence, "config": config}, roles)
    return folder


def shown(page) -> dict[str, str]:
    form = page.details.form
    return {form.itemAt(i, form.ItemRole.LabelRole).widget().text(): form.itemAt(i, form.ItemRole.FieldRole).widget().text()
            for i in range(form.rowCount())}


def test_a_turbo_checkpoint_pack_shows_family_size_recommendations_and_licence(qtbot, ctx):  # noqa: F811
    image_pack(Library().destination("my-turbo"), "my-turbo",
               {"family": "sd21-turbo", "family_label": "Stable Diffusion 2.x Turbo", "native_size": 512, "sample_size": 64,
                "default_steps": 1, "default_guidance": 0.0, "default_scheduler": "euler"},
               {"id": "sai-nc-community"}, {"LICENSE.md": "STABILITY AI NON-COMMERCIAL RESEARCH COMMUNITY LICENSE\n**clause 1**"})
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    page.select("my-turbo")
    rows = shown(page)
    assert list(rows)[:3] == ["Modality:", "Architecture:", "Base model:"]  # read together
    assert rows["Base model:"] == "Stable Diffusion 2.x Turbo"
    assert rows["Native size:"].startswith("512×512")
    assert rows["Recommended steps:"] == "1"
    assert rows["Recommended guidance:"].startswith("0 (off")
    assert rows["Recommended scheduler:"] == "Euler"
    assert rows["Licence:"] == "Stability AI Non-Commercial Research Community License (sai-nc-community) - see the Licence tab"
    text = page.details.licence.toPlainText()
    assert "Non-commercial use only" in text and "huggingface.co/stabilityai/sd-turbo" in text
    assert "STABILITY AI NON-COMMERCIAL" in text and "**clause 1**" in text  # the pack's file, verbatim, never rendered
    assert [page.details.tabs.tabText(i) for i in range(page.details.tabs.count())][-1] == "Licence"
    assert page.list.currentItem().text().endswith("image · Stable Diffusion 2.x Turbo · fp16")  # the family, in the list too


def test_a_diffusers_folder_pack_without_recorded_size_shows_the_engines_size(qtbot, ctx):  # noqa: F811
    image_pack(Library().destination("sd-folder"), "sd-folder", {"sample_size": 64, "vae_scale_factor": 8},
               {"id": "creativeml-openrail-m"})
    data_pack(Library().destination("demo-text"))
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    page.select("sd-folder")
    rows = shown(page)
    assert rows["Base model:"] == "stable-diffusion" and rows["Native size:"].startswith("512×512")
    assert "Recommended steps:" not in rows  # nothing recorded: nothing invented
    assert "CreativeML Open RAIL-M" in rows["Licence:"] and "Attachment A" in page.details.licence.toPlainText()
    page.select("demo-text")
    assert "Base model:" not in shown(page)  # a text pack has no image rows
    assert "Apache License 2.0" in page.details.licence.toPlainText()


def test_an_image_packs_details_fit_the_smallest_window(qtbot, ctx):  # noqa: F811
    """~17 rows of facts once set the window's minimum height past 600 (seen at 900×600): they scroll."""
    from desktop.ui.main_window import MainWindow

    image_pack(Library().destination("my-turbo"), "my-turbo",
               {"family_label": "Stable Diffusion 2.x Turbo", "native_size": 512, "default_steps": 1, "default_guidance": 0.0,
                "default_scheduler": "euler"}, {"id": "sai-nc-community"})
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    library = window.studios["Library"]
    window.tabs.setCurrentWidget(library)
    library.select("my-turbo")
    ctx.notifier.info("A banner over the tabs")
    assert "Base model:" in shown(library)
    hint = library.minimumSizeHint()
    assert hint.height() <= 600 - 80 and hint.width() <= 900 - 20, hint
    assert window.minimumSizeHint().height() <= 600, window.minimumSizeHint()
