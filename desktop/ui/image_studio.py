"""The Image studio: settings on the left, the live preview and the gallery on the right.

Generate (Ctrl+Enter) loads the chosen pack through the EngineSlot if needed and runs one
job; every denoising step shows its preview, Cancel (or Esc) stops before the next step.
Each finished image is written at once to the image store (PNG with every setting), so
the gallery survives restarts and nothing is lost. The PNG encode and write (up to a
second at 1024 px) and the thumbnail happen on the job's worker thread; the GUI thread
only shows the results. Dropping an Atelier PNG restores its
settings ("reproduce"). Packs that can morph get the morph panel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.defaults import default_model
from desktop.engines.errors import AtelierError, RequestError
from desktop.engines.events import Done, ImageResult, Notice, Step
from desktop.outputs.folders import IMAGES, studio_folder
from desktop.outputs.image_store import ImageStore
from desktop.ui.engine_slot import EngineSlot
from desktop.ui.finish_jobs import stop_and_collect
from desktop.ui.image_controls import ImageControls
from desktop.ui.image_gallery import ImageGallery
from desktop.ui.image_gallery_actions import GalleryActions
from desktop.ui.image_morph import MorphPanel
from desktop.ui.image_saving import SavedImage, SavingJob
from desktop.ui.open_folder import open_folder
from desktop.ui.rgb_image import rgb_pixmap
from desktop.workers import GeneratorWorker, Outcome, start


class PreviewView(QLabel):
    """Shows the newest preview or result, scaled to fit (crisp for tiny images)."""

    def __init__(self):
        super().__init__("Your picture appears here.")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None

    def show_image(self, image: np.ndarray) -> None:
        self._pixmap = rgb_pixmap(image)
        self._rescale()

    def clear_image(self) -> None:
        self._pixmap = None
        self.clear()
        self.setText("Your picture appears here.")

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        small = max(self._pixmap.width(), self._pixmap.height()) < 256
        mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, mode))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()


class ImageStudio(GalleryActions, QWidget):
    image_added = Signal(str)  # path of a new gallery image
    preview_shown = Signal(int, int)  # step index, total
    job_finished = Signal(object)  # the job's Outcome
    morph_finished = Signal(object)  # the morph's Outcome

    def __init__(self, ctx, store: ImageStore | None = None):
        super().__init__()
        self.ctx = ctx
        self._follows_settings = store is None  # a store handed in (tests) stays put
        self.store = store or ImageStore(studio_folder(IMAGES, ctx.settings.load().output_dir))
        self.slot = EngineSlot("image", ctx.settings.runtime, ctx.notifier, self, library=ctx.library)
        self.slot.loaded.connect(self._on_engine)
        self.slot.load_failed.connect(lambda _e: self._set_pending(False))
        self.slot.busy_changed.connect(self._on_busy)
        self._pending = False
        self._pending_settings: dict | None = None
        self.shown_seed: int | None = None  # the seed of the picture in the preview
        self.morph_job: GeneratorWorker | None = None
        self._last_stats: dict = {}
        self._saving: SavingJob | None = None
        self._build()
        self.setAcceptDrops(True)
        events = getattr(ctx, "events", None)
        if events is not None:
            events.library_changed.connect(self.refresh_models)
            events.settings_changed.connect(self.follow_output_folder)
        self.refresh_models()

    def follow_output_folder(self) -> None:
        """Settings saved: the next image goes to the (maybe changed) default output
        folder, and the gallery lists that folder."""
        folder = studio_folder(IMAGES, self.ctx.settings.load().output_dir)
        if self._follows_settings and folder != self.store.root:
            self.store = self.gallery.store = ImageStore(folder)
            self.gallery.reload()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        self.controls = ImageControls()
        self.controls.model_chosen.connect(self._choose_model)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Ctrl+Enter")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.status = QLabel("Drop an Atelier PNG here to restore its settings.")
        self.status.setWordWrap(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(self.controls)
        ll.addLayout(buttons)
        ll.addWidget(self.progress)
        ll.addWidget(self.status)
        ll.addStretch(1)
        # the settings column scrolls: every control stays reachable in a 900×600 window
        # without the column setting the window's minimum height
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(left.minimumSizeHint().width() + left_scroll.verticalScrollBar().sizeHint().width())

        self.preview = PreviewView()
        self.morph = MorphPanel()
        self.morph.run_requested.connect(self.run_morph)
        self.morph.save_requested.connect(self.save_morph)
        self.morph.frame_shown.connect(self.preview.show_image)
        self.morph.problem.connect(self.ctx.notifier.error)
        self.morph.hide()
        self.gallery = ImageGallery(self.store)
        self.gallery.image_activated.connect(self._show_file)
        gallery_buttons = QHBoxLayout()
        self.selection_buttons: list[QPushButton] = []
        for text, slot in (("Reproduce", self._reproduce_selected), ("Save as…", lambda: self._save_selected()), ("Delete", self._delete_selected)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            b.setEnabled(False)  # they act on the selected image: only live while there is one
            gallery_buttons.addWidget(b)
            self.selection_buttons.append(b)
        self.gallery.itemSelectionChanged.connect(self._on_gallery_selection)
        open_button = QPushButton("Open folder")
        open_button.setToolTip("Where the gallery's PNGs are kept")
        open_button.clicked.connect(lambda: open_folder(self.store.root, self))
        gallery_buttons.addWidget(open_button)
        right = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.preview, 1)
        seed_row = QHBoxLayout()
        self.seed_label = QLabel("")
        self.seed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long file name must not set the window's minimum width (it widened 900 px to 936): cut, whole in the tooltip
        self.seed_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.copy_seed_button = QPushButton("Copy seed")
        self.copy_seed_button.clicked.connect(self.copy_seed)
        self.copy_seed_button.setEnabled(False)
        seed_row.addWidget(self.seed_label, 1)
        seed_row.addWidget(self.copy_seed_button)
        tl.addLayout(seed_row)
        tl.addWidget(self.morph)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(QLabel("Gallery"))
        bl.addWidget(self.gallery, 1)
        bl.addLayout(gallery_buttons)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setSizes([520, 260])
        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(right)
        split.setSizes([380, 820])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

    # -- models --------------------------------------------------------------------------
    def refresh_models(self) -> None:
        names = [e.name for e in self.ctx.library.entries() if e.manifest and e.manifest.get("modality") == "image"]
        current = self.controls.model.currentText() or str(self.ctx.settings.value("image/model") or "")
        current = current if current in names else (default_model(self.ctx.library, "image") or "")
        self.controls.set_models(names, current)
        if names:
            self._choose_model(self.controls.model.currentText())

    def _choose_model(self, name: str) -> None:
        if name:
            self.ctx.settings.set_value("image/model", name)
            self.slot.load(name)  # a no-op when already loaded or on its way

    def _on_engine(self, engine) -> None:
        caps = engine.capabilities
        self.controls.apply_capabilities(caps, engine.pack.name)
        self.morph.setVisible(caps.morph)
        self.morph.clear()
        if self._pending_settings is not None:
            self.controls.apply_settings(self._pending_settings)
            self._pending_settings = None
        if self._pending:
            self._set_pending(False)
            self._start()

    # -- generating ----------------------------------------------------------------------
    def generate(self) -> None:
        if self.slot.busy or self.morph_job is not None:
            self.ctx.notifier.error(RequestError("A picture is being made; wait or press Cancel first."))
            return
        name = self.controls.model.currentText()
        if not name:
            self.ctx.notifier.error(RequestError("No image model is installed. Import one in the Library first."))
            return
        if self.slot.engine is None or self.slot.name != name:
            self._set_pending(True)  # starts when the model has loaded
            self.slot.load(name)
            return
        self._start()

    def _set_pending(self, pending: bool) -> None:
        self._pending = pending
        if pending:
            self.status.setText("Loading the model…")

    def _start(self) -> None:
        try:
            request = self.controls.request()
        except AtelierError as exc:
            self.ctx.notifier.error(exc)
            return
        self.progress.setRange(0, max(1, (request.steps or 1) * request.batch_count))
        self.progress.setValue(0)
        saving = SavingJob(self.slot.engine, self.store)
        if self.slot.run(request, self._on_event, self._on_end, generate=saving) is not None:  # None: refused, and said why
            self._saving = saving
            armed = request.init_image is not None
            self.status.setText(f"Generating from {self.controls.init_path or 'the starting image'}…" if armed else "Generating…")

    def _on_event(self, ev) -> None:
        if isinstance(ev, Step):
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.index)
            if ev.preview is not None:
                self.preview.show_image(ev.preview)
            self.preview_shown.emit(ev.index, ev.total)
        elif isinstance(ev, SavedImage):
            if self._saving is not None and self._saving.take(ev):
                self._show_saved(ev)
        elif isinstance(ev, Notice):
            self.ctx.notifier.info(ev.message)
        elif isinstance(ev, Done):
            self._last_stats = ev.stats
            per = ev.stats.get("seconds_per_image")
            self.status.setText(("Done: " + (f"{per:.2f} s" if per >= 0.1 else f"{per * 1000:.0f} ms") + " per image.") if per is not None else "Done.")

    def _show_saved(self, saved: SavedImage) -> None:
        self.preview.show_image(saved.image)
        self._show_seed(saved.metadata.get("seed"), saved.path.name)
        self.gallery.add(saved.path, saved.thumb)
        self.image_added.emit(str(saved.path))

    def _on_end(self, outcome: Outcome) -> None:
        saving, self._saving = self._saving, None
        for saved in saving.take_all() if saving is not None else ():
            self._show_saved(saved)  # stored by a job stopped before it could deliver them
        if outcome.stopped:
            self.status.setText("Cancelled; finished images are in the gallery.")
        elif outcome.failed:
            self.status.setText("Stopped by an error (see the message above).")
        self.job_finished.emit(outcome)

    def _on_busy(self, busy: bool) -> None:
        self.generate_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy or self.morph_job is not None)
        self.morph.make.setEnabled(not busy)

    # -- the Studio protocol (desktop/ui/studio.py): primary_action, stop, shutdown -------------
    def primary_action(self) -> None:
        self.generate()

    def stop(self) -> None:
        self.slot.stop()
        if self.morph_job is not None:
            self.morph_job.abort()

    # -- morph ---------------------------------------------------------------------------
    def run_morph(self, seed_a: int, seed_b: int, frames: int) -> None:
        engine = self.slot.engine
        if engine is None or self.slot.busy or self.morph_job is not None:
            self.ctx.notifier.error(RequestError("Load a model that can morph, and wait for the current job."))
            return
        try:
            request = self.controls.request()
        except AtelierError as exc:
            self.ctx.notifier.error(exc)
            return
        self.morph.clear()
        worker = GeneratorWorker(engine.morph, request, seed_a, seed_b, frames)
        worker.signals.yielded.connect(self._on_morph_event)
        worker.signals.ended.connect(self._morph_done)
        self.morph_job = worker
        self.progress.setRange(0, frames)
        self.progress.setValue(0)
        self._on_busy(True)
        start(worker)

    def _on_morph_event(self, ev) -> None:
        if isinstance(ev, Step):
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.index)
        elif isinstance(ev, ImageResult):
            self.morph.add_frame(ev.image, ev.metadata)

    def _morph_done(self, outcome: Outcome) -> None:
        if outcome.failed:
            self.ctx.notifier.error(outcome.error)
        self.morph_job = None
        self._on_busy(False)
        self.status.setText(f"Morph: {len(self.morph.frames)} frames." if outcome.done else "Morph stopped.")
        self.morph_finished.emit(outcome)

    def save_morph(self, path: str | None = None) -> Path | None:
        if len(self.morph.frames) < 2:
            return None
        if path is None:
            folder = self.ctx.settings.save_folder()
            path, _ = QFileDialog.getSaveFileName(self, "Save morph", str(Path(folder) / "morph.gif"), "Animated GIF (*.gif);;Animated WebP (*.webp)")
            if not path:
                return None
            self.ctx.settings.remember_save(path)
        from desktop.outputs.image_meta import image_record, save_animation

        engine = self.slot.engine
        try:
            record = image_record(engine.pack, self.morph.records[0], engine.provider.used)
            return save_animation(path, self.morph.frames, record, overwrite=True)  # the save dialog asked
        except (AtelierError, OSError) as exc:
            self.ctx.notifier.error(exc if isinstance(exc, AtelierError) else RequestError(f"Could not save: {exc}"))
            return None

    def reproduce(self, path: str | Path) -> bool:
        """Restore the settings stored in an Atelier PNG. Returns whether it worked."""
        from desktop.outputs.image_meta import read_settings

        try:
            record = read_settings(path)
        except AtelierError as exc:
            self.ctx.notifier.error(exc)
            return False
        settings = record["settings"]
        names = [self.controls.model.itemText(i) for i in range(self.controls.model.count())]
        pack = settings.get("pack") or record.get("pack", "")
        if pack in names and pack != self.controls.model.currentText():
            self._pending_settings = settings  # applied once that pack's controls are shown
            self.controls.model.setCurrentText(pack)
        else:
            if pack and pack not in names:
                self.ctx.notifier.warning(f"The image was made with '{pack}', which is not installed; settings restored for the current model.")
            self.controls.apply_settings(settings)
        engine = self.slot.engine
        if engine is not None and record.get("pack_sha256") and engine.pack.name == pack and engine.pack.pack_hash != record["pack_sha256"]:
            self.ctx.notifier.warning(f"'{pack}' has changed since this image was made; the same seed may give different pixels.")
        self.status.setText(f"Settings restored from {Path(path).name}.")
        return True

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.reproduce(files[0])

    def shutdown(self) -> None:
        """Closing mid-batch keeps the images already finished: the job is stopped and
        its queued results are stored before the engine goes."""
        if self.morph_job is not None:
            self.morph_job.abort()
        if not stop_and_collect(self.slot):
            self.ctx.notifier.warning("The image job did not stop in time; images it had not finished are lost.")
        self.slot.close()
