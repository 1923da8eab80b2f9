"""The Image studio's gallery actions: view on click (with the picture's seed, copyable),
Save as… (in the output folder), Delete to the trash with Undo, Reproduce.

A mixin of ImageStudio, which provides ``ctx``, ``store``, ``gallery``, ``preview``,
``seed_label``, ``copy_seed_button``, ``selection_buttons`` and ``reproduce``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from desktop.engines.errors import AtelierError, RequestError


class GalleryActions:
    # -- seed --------------------------------------------------------------------------------
    def _show_seed(self, seed, name: str) -> None:
        """The seed of the picture on show, so a random one can be kept and reused."""
        self.shown_seed = int(seed) if isinstance(seed, int) or (isinstance(seed, str) and seed.isdigit()) else None
        # the seed first: in a narrow window the label is cut at its end, and the name matters less
        self.seed_label.setText(f"seed {self.shown_seed} · {name}" if self.shown_seed is not None else f"no seed recorded · {name}")
        self.seed_label.setToolTip(self.seed_label.text())
        self.copy_seed_button.setEnabled(self.shown_seed is not None)

    def copy_seed(self) -> None:
        from PySide6.QtGui import QGuiApplication

        if self.shown_seed is not None:
            QGuiApplication.clipboard().setText(str(self.shown_seed))
            self.ctx.notifier.info(f"Seed {self.shown_seed} copied.")

    # -- gallery and reproduce --------------------------------------------------------------
    def _show_file(self, path: str) -> None:
        from PIL import Image

        from desktop.outputs.image_meta import read_settings

        try:
            with Image.open(path) as img:
                self.preview.show_image(np.asarray(img.convert("RGB")))
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Cannot open '{Path(path).name}': {exc}"))
            return
        try:
            seed = read_settings(path)["settings"].get("seed")
        except AtelierError:
            seed = None  # not an Atelier PNG (or its record is damaged): no seed to show
        self._show_seed(seed, Path(path).name)

    def _on_gallery_selection(self) -> None:
        for b in self.selection_buttons:
            b.setEnabled(self.gallery.selected_path() is not None)

    def _reproduce_selected(self) -> None:
        path = self.gallery.selected_path()
        if path:
            self.reproduce(path)

    def _save_selected(self, dest: str | None = None) -> Path | None:
        import shutil

        path = self.gallery.selected_path()
        if not path:
            self.ctx.notifier.error(RequestError("Select an image in the gallery to save."))
            return None
        if not dest:
            start_at = str(Path(self.ctx.settings.save_folder()) / Path(path).name)
            dest, _ = QFileDialog.getSaveFileName(self, "Save image", start_at, "PNG image (*.png)")
            if not dest:
                return None
        try:
            shutil.copy2(path, dest)  # a copy keeps every metadata chunk
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not save to '{dest}': {exc.strerror or exc}."))
            return None
        self.ctx.settings.remember_save(dest)
        self.ctx.notifier.info(f"Saved {Path(dest).name}")
        return Path(dest)

    def _delete_selected(self) -> None:
        try:
            trashed = self.gallery.remove_selected()
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not delete the image: {exc.strerror or exc}."))
            return
        self._on_gallery_selection()  # nothing selected now: Delete is off (signals were held)
        if trashed is None:
            return
        self.preview.clear_image()
        self.seed_label.clear()
        self.shown_seed = None
        self.copy_seed_button.setEnabled(False)
        self.ctx.notifier.undoable(f"Moved {trashed.original.name} to the trash.", lambda: self._undo_delete(trashed))

    def _undo_delete(self, trashed) -> None:
        try:
            self.store.restore(trashed)
        except OSError as exc:
            self.ctx.notifier.error(RequestError(f"Could not bring the image back: {exc.strerror or exc}."))
            return
        self.gallery.reload()
        self._on_gallery_selection()
        self.ctx.notifier.info(f"Restored {trashed.original.name}.")
