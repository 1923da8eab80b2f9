"""The Library imports a single-file image checkpoint: recognised from its header (refused in
one line when it is a LoRA, a VAE or unknown), exported in a child process with its stages
shown, and cancelled by killing that child, leaving nothing in the library or on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from desktop.engines.packs.library import Library
from desktop.ui.library import LibraryPage
from tests.desktop.app_helpers import ctx, data_pack, messages  # noqa: F401 - ctx is a fixture


def _page(qtbot, ctx):  # noqa: F811
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    return page


def _left_in_library() -> list[str]:
    """Every entry of the library folder but the lock folder (a staging folder counts)."""
    return sorted(p.name for p in Library().root.iterdir() if p.name != ".locks") if Library().root.exists() else []


def _children_reading(path: Path) -> list[int]:
    """Processes whose command line names ``path``: the export child, if it still runs."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(path).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


def _safetensors(path: Path, names: list[str]) -> Path:
    from safetensors.numpy import save_file

    save_file({n: np.zeros((2, 2), np.float32) for n in names}, str(path))
    return path


@pytest.mark.parametrize("names, what", [
    (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "a LoRA"),
    (["first_stage_model.encoder.conv_in.weight", "first_stage_model.decoder.conv_out.weight"], "a VAE on its own"),
    (["some.weight"], "not a model Atelier recognises"),
])
def test_lora_vae_or_unknown_file_is_refused_in_one_line_before_any_export(qtbot, ctx, tmp_path, names, what):  # noqa: F811
    path = _safetensors(tmp_path / "file.safetensors", names)
    page = _page(qtbot, ctx)
    assert page.import_path(path) is not None
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)
    errors = messages(ctx, "error")
    assert len(errors) == 1 and what in errors[0] and "file.safetensors" in errors[0] and "\n" not in errors[0], errors
    assert "Stable Diffusion 1.x" in errors[0]  # the supported families are listed
    assert _left_in_library() == [] and page.list.count() == 0


def test_a_name_already_installed_is_refused_before_the_export(qtbot, ctx, tmp_path, cache_dir):  # noqa: F811
    from tests.tiny_checkpoint import tiny_sd1_checkpoint

    ckpt, _folder = tiny_sd1_checkpoint(cache_dir)
    data_pack(Library().destination(ckpt.stem), name=ckpt.stem)
    page = _page(qtbot, ctx)
    page.import_path(ckpt)
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)
    assert any("already installed" in m and ckpt.stem in m for m in messages(ctx, "error")), messages(ctx)
    assert not _children_reading(ckpt)


def test_a_pickle_is_converted_only_with_consent(qtbot, ctx, tmp_path, monkeypatch):  # noqa: F811
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"not opened")
    page = _page(qtbot, ctx)
    asked = []
    monkeypatch.setattr(page, "confirm_pickle", lambda path: asked.append(path) or False)
    assert page.import_path(ckpt) is None  # declined: nothing starts
    assert asked == [ckpt] and not page.job_bar.busy
    assert any("old.ckpt" in m and "not imported" in m for m in messages(ctx, "info"))
    from desktop.ui.library import pickle_warning

    warning = pickle_warning(ckpt)
    assert "run any program" in warning and "trust" in warning  # the dialog says why it asks


def _tiny_configs(root: Path, folder: Path) -> Path:
    """The 'sd15' config bundle for the tiny pipeline (the vendored one describes a full-size
    UNet), with a real bundle's recommended settings; the child export reads it through
    ATELIER_IMAGE_CONFIGS."""
    import shutil

    shutil.copytree(folder, root / "sd15", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    (root / "sd15" / "atelier_defaults.json").write_text(json.dumps({"default_steps": 25, "default_guidance": 7.5}))
    return root


@pytest.fixture
def tiny_checkpoint(cache_dir, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    from tests.tiny_checkpoint import tiny_sd1_checkpoint

    ckpt, folder = tiny_sd1_checkpoint(cache_dir)
    monkeypatch.setenv("ATELIER_IMAGE_CONFIGS", str(_tiny_configs(tmp_path / "configs", folder)))
    mine = tmp_path / "my-model.safetensors"  # a path of this test's own: its child is told by it
    mine.write_bytes(ckpt.read_bytes())
    return mine


@pytest.mark.slow
def test_library_imports_a_checkpoint_showing_each_stage(qtbot, ctx, tiny_checkpoint):  # noqa: F811
    page = _page(qtbot, ctx)
    seen: list[str] = []
    worker = page.import_path(tiny_checkpoint)
    worker.signals.yielded.connect(lambda ev: seen.append(getattr(ev, "message", "")))
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=600000)
    assert not messages(ctx, "error"), messages(ctx)
    (entry,) = [e for e in Library().entries() if e.manifest]
    assert entry.name == "my-model" and entry.manifest["config"]["family"] == "sd15"
    assert page.selected_root() == str(entry.root)  # the new pack is selected
    stages = " | ".join(dict.fromkeys(seen))
    for stage in ("Reading my-model.safetensors: Stable Diffusion 1.x", "Loading my-model.safetensors (Stable Diffusion 1.x) with PyTorch",
                  "Converting to ONNX: text encoder", "(done: text encoder",
                  "Validating the fp32 graph", "Exported in", "Verifying the new pack"):
        assert stage in stages, stages
    assert ".staging-" not in stages  # the work folder is no news to the person
    assert _left_in_library() == ["my-model"] and not _children_reading(tiny_checkpoint)
    from tests.desktop.test_library_image_details import shown

    rows = shown(page)  # what the export recorded, in the details
    assert rows["Base model:"] == "Stable Diffusion 1.x" and rows["Recommended steps:"] == "25", rows
    assert rows["Recommended guidance:"] == "7.5" and "CreativeML Open RAIL-M" in rows["Licence:"], rows


@pytest.mark.slow
def test_cancel_mid_export_kills_the_child_and_leaves_nothing(qtbot, ctx, tiny_checkpoint):  # noqa: F811
    page = _page(qtbot, ctx)
    seen: list[str] = []
    worker = page.import_path(tiny_checkpoint)
    worker.signals.yielded.connect(lambda ev: seen.append(getattr(ev, "message", "")))
    qtbot.waitUntil(lambda: any(m.startswith("Converting") for m in seen) or not page.job_bar.busy, timeout=600000)
    assert page.job_bar.busy and _children_reading(tiny_checkpoint), seen  # cancelled while the child works
    with qtbot.waitSignal(worker.signals.aborted, timeout=30000):
        page.job_bar.cancel_button.click()
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)
    assert not _children_reading(tiny_checkpoint)  # killed, not left converting in the background
    assert _left_in_library() == [] and page.list.count() == 0  # no pack, no staging or temporary folder
    assert "Import cancelled; nothing was added to the library." in messages(ctx, "info")


_MIMES: list = []  # a drop event only points at its data: the data must outlive it


def _drop_event(path: Path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    _MIMES.append(mime)
    return QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)


def test_a_checkpoint_dropped_on_the_library_or_the_image_studio_is_imported(qtbot, ctx, tmp_path):  # noqa: F811
    """Qt delivers drops only during a real drag, so each event goes where Qt would hand it: the
    Library's drop handler, and the Image studio's drop filter (a PNG stays the studio's, to reproduce)."""
    from desktop.ui.main_window import MainWindow

    lora = _safetensors(tmp_path / "style-lora.safetensors", ["lora_unet_x.lora_down.weight"])
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    image, library = window.studios["Image"], window.studios["Library"]
    library.dropEvent(_drop_event(lora))
    qtbot.waitUntil(lambda: bool(messages(ctx, "error")) and not library.job_bar.busy, timeout=30000)
    assert "'style-lora.safetensors' is a LoRA" in messages(ctx, "error")[-1]

    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG")
    assert not window.image_drop.eventFilter(image.controls.prompt.viewport(), _drop_event(png))
    assert window.tabs.currentWidget() is not library
    assert window.image_drop.eventFilter(image.controls.prompt.viewport(), _drop_event(lora))
    assert window.tabs.currentWidget() is library
    qtbot.waitUntil(lambda: len(messages(ctx, "error")) == 2 and not library.job_bar.busy, timeout=30000)
    assert "'style-lora.safetensors' is a LoRA" in messages(ctx, "error")[-1] and _left_in_library() == []


@pytest.mark.slow
def test_a_consented_pickle_is_converted_tensors_only_and_code_in_it_never_runs(qtbot, ctx, tmp_path, monkeypatch):  # noqa: F811
    """With consent the child unpickles tensors only: a pickle that carries code is refused in one
    line, the code never runs, and nothing is left behind."""
    import pickle

    pytest.importorskip("torch")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}))
    page = _page(qtbot, ctx)
    monkeypatch.setattr(page, "confirm_pickle", lambda path: True)  # the person clicked "Convert anyway"
    assert page.import_path(evil) is not None
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=300000)
    errors = messages(ctx, "error")
    assert len(errors) == 1 and "evil.ckpt" in errors[0] and "safely" in errors[0] and "\n" not in errors[0], errors
    assert not marker.exists() and _left_in_library() == [] and not _children_reading(evil)


@pytest.mark.slow
def test_closing_the_window_mid_export_kills_the_child_too(qtbot, ctx, tiny_checkpoint):  # noqa: F811
    page = _page(qtbot, ctx)
    seen: list[str] = []
    worker = page.import_path(tiny_checkpoint)
    worker.signals.yielded.connect(lambda ev: seen.append(getattr(ev, "message", "")))
    qtbot.waitUntil(lambda: bool(_children_reading(tiny_checkpoint)) or not page.job_bar.busy, timeout=60000)
    assert page.job_bar.busy, seen
    page.shutdown()  # what the main window calls on close
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)
    assert not _children_reading(tiny_checkpoint) and _left_in_library() == []
