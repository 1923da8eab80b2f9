"""Deleting a gallery image or a speech clip moves it to the trash with an Undo in the
banner; nothing stays selected, so a second click on Delete deletes nothing; the trash is
emptied of what was deleted long ago. Driven through the real buttons and banner."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from desktop.engines.packs.library import Library, data_dir
from desktop.outputs.clip_store import ClipStore
from desktop.outputs.trash import Trash
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Banner, Notifier


@pytest.fixture
def ctx(atelier_home):
    return AppContext(Settings(), Notifier(Banner()), Library())


def button(widget, text: str) -> QPushButton:
    return next(b for b in widget.findChildren(QPushButton) if b.text() == text)


def click(qtbot, b: QPushButton) -> None:
    qtbot.mouseClick(b, Qt.MouseButton.LeftButton)


def test_gallery_delete_goes_to_the_trash_and_undo_brings_it_back(qtbot, ctx):
    from desktop.ui.image_studio import ImageStudio

    images = data_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, colour in enumerate(("red", "green", "blue")):
        p = images / f"img-2026010{i}-000000-{i}.png"
        Image.new("RGB", (16, 16), colour).save(p)
        paths.append(p)
    studio = ImageStudio(ctx)
    qtbot.addWidget(studio)
    assert studio.gallery.count() == 3
    studio.gallery.setCurrentRow(1)
    chosen = studio.gallery.selected_path()
    click(qtbot, button(studio, "Delete"))
    assert studio.gallery.count() == 2 and chosen not in studio.gallery.paths()
    assert not Path(chosen).exists()
    trashed = list((data_dir() / "trash").iterdir())
    assert [t.name.split("--", 1)[1] for t in trashed] == [Path(chosen).name]
    assert studio.gallery.selected_path() is None  # nothing for a second click to hit
    assert not button(studio, "Delete").isEnabled() and not button(studio, "Save as…").isEnabled()
    click(qtbot, button(studio, "Delete"))  # the double click that used to take the next image
    assert studio.gallery.count() == 2 and all(p.exists() for p in paths if str(p) != chosen)
    banner = ctx.notifier.banner
    assert banner.undo_button.isVisibleTo(banner)
    click(qtbot, banner.undo_button)
    assert studio.gallery.count() == 3 and Path(chosen).exists()
    assert not list((data_dir() / "trash").iterdir())
    studio.shutdown()


def test_clip_delete_goes_to_the_trash_and_undo_brings_it_back(qtbot, ctx):
    from desktop.ui.speech_studio import SpeechStudio

    store = ClipStore()
    for i in range(3):
        store.add(np.full(2205, 0.1 * (i + 1), dtype=np.float32), 22050, {"pack": "test"}, f"clip number {i}")
    studio = SpeechStudio(ctx, play=False)
    qtbot.addWidget(studio)
    assert studio.clip_list.count() == 3
    studio.clip_list.setCurrentRow(0)
    chosen = studio.selected_clip().path
    click(qtbot, button(studio, "Delete"))
    assert studio.clip_list.count() == 2 and not chosen.exists()
    assert studio.selected_clip() is None and not studio.clip_list.selectedItems()
    assert not button(studio, "Delete").isEnabled()
    click(qtbot, button(studio, "Delete"))
    assert studio.clip_list.count() == 2 and len(list(store.root.glob("clip-*.wav"))) == 2
    click(qtbot, ctx.notifier.banner.undo_button)
    assert studio.clip_list.count() == 3 and chosen.exists()
    studio.shutdown()


def test_old_trash_is_emptied_and_recent_kept(tmp_path):
    trash = Trash(tmp_path / "trash")
    old_file, new_file = tmp_path / "old.png", tmp_path / "new.png"
    old_file.write_bytes(b"x")
    new_file.write_bytes(b"y")
    old = trash.move(old_file)
    new = trash.move(new_file)
    (trash.root / "someone-elses.txt").write_text("not ours")
    assert trash.empty(older_than_days=30, now=time.time() + 30 * 86400 - 60) == 0
    assert trash.empty(older_than_days=30, now=time.time() + 30 * 86400 + 60) == 2
    assert not old.path.exists() and not new.path.exists() and (trash.root / "someone-elses.txt").exists()


def test_restoring_beside_a_file_that_took_the_name(tmp_path):
    trash = Trash(tmp_path / "trash")
    f = tmp_path / "a.png"
    f.write_bytes(b"first")
    item = trash.move(f)
    f.write_bytes(b"second")
    back = trash.restore(item)
    assert back == tmp_path / "a-2.png" and back.read_bytes() == b"first" and f.read_bytes() == b"second"


def test_the_window_empties_old_trash_after_its_first_paint(qtbot, ctx):
    from desktop.ui.main_window import MainWindow

    trash = Trash()
    trash.root.mkdir(parents=True, exist_ok=True)
    old = trash.root / f"{time.time() - 31 * 86400:.6f}--img-old.png"
    recent = trash.root / f"{time.time() - 86400:.6f}--img-recent.png"
    old.write_bytes(b"x")
    recent.write_bytes(b"y")
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.first_painted, timeout=10_000):
        window.show()
    qtbot.waitUntil(lambda: not old.exists(), timeout=5_000)
    assert recent.exists()
