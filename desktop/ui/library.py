"""The model library page: every installed pack, import, verify, remove, open folder.

The list reads manifests only (instant); hashing and importing run in a GeneratorWorker
with progress and Cancel. Whenever the set of packs changes - through this page, the CLI
or a file manager (a QFileSystemWatcher sees the folder change) - the page emits
``ctx.events.library_changed`` so studios refresh their model pickers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.engines.errors import PackError, RequestError
from desktop.engines.events import Progress
from desktop.engines.packs.library import PackEntry
from desktop.pack_info import VerifyResult, check_still_there, import_notice, verify_pack
from desktop.ui.job_bar import JobBar
from desktop.ui.library_checkpoint import checkpoint_import_events, is_checkpoint, is_pickle
from desktop.ui.open_folder import open_folder
from desktop.ui.pack_details import PackDetails
from desktop.workers import GeneratorWorker, start

ROOT_ROLE = Qt.ItemDataRole.UserRole
IMPORT_FILTER = (
    "Model files (*.zip *.gguf *.safetensors *.ckpt *.pt *.pth *.bin);;Zip archives (*.zip);;GGUF language models (*.gguf);;"
    "Image checkpoints (*.safetensors);;Pickle checkpoints, converted only with consent (*.ckpt *.pt *.pth *.bin)"
)


def pickle_warning(path: Path) -> str:
    return (
        f"'{path.name}' is a pickle checkpoint. Opening a pickle can run any program its author hid in it.\n\n"
        "Atelier can convert it in a separate process that reads tensors only (torch.load with weights_only), "
        "which refuses code - but only do this if you trust where the file came from. "
        "A .safetensors version of the same model is always the safer choice."
    )


class LibraryPage(QWidget):
    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx
        self.entries: list[PackEntry] = []
        self.integrity: dict[str, tuple[str, str]] = {}  # pack folder -> (state, text)
        self._signature: tuple = ()
        self._importing = False
        self._just_imported: str | None = None
        self.setAcceptDrops(True)
        self._build()
        # The watcher sees removals and copies made outside the app; the timer coalesces
        # the burst of change notifications one copy produces into one refresh.
        self._debounce = QTimer(self, singleShot=True, interval=300, timeout=lambda: self.refresh(explain_missing=True))
        self.watcher = QFileSystemWatcher([str(ctx.library.root)], self)
        self.watcher.directoryChanged.connect(self._on_folder_changed)
        self.refresh(announce=False)

    def _build(self) -> None:
        top = QHBoxLayout()
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.setToolTip("An Atelier pack, a Piper voice, an optimum / onnxruntime-genai LLM folder or a Stable Diffusion ONNX folder")
        self.import_folder_button.clicked.connect(self._choose_folder)
        self.import_zip_button = QPushButton("Import .zip, .gguf or checkpoint…")
        self.import_zip_button.setToolTip("A zipped pack, a GGUF language model, or a single-file Stable Diffusion checkpoint (.safetensors)")
        self.import_zip_button.clicked.connect(self._choose_zip)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.location = QLabel(f"Library: {self.ctx.library.root}")
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long library path must not set the window's minimum width: it is cut, and whole in the tooltip
        self.location.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.location.setToolTip(str(self.ctx.library.root))
        for w in (self.import_folder_button, self.import_zip_button, refresh):
            top.addWidget(w)
        top.addWidget(self.location, 1)
        self.job_bar = JobBar()

        self.list = QListWidget()
        self.list.currentItemChanged.connect(lambda *_: self._show_selected())
        self.details = PackDetails()
        self.details.verify_requested.connect(self.verify_selected)
        self.details.remove_requested.connect(self.remove_selected)
        self.details.open_folder_requested.connect(self.open_selected_folder)
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(self.details)
        split.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.job_bar)
        lay.addWidget(split, 1)

    # -- the list ---------------------------------------------------------------------------
    def refresh(self, announce: bool = True, explain_missing: bool = False) -> None:
        """Re-read the library; tell studios when the set of packs changed. With
        ``explain_missing`` (a change seen on disk, not made here) a selected pack that
        vanished is explained."""
        selected = self.selected_root()
        self.entries = self.ctx.library.entries()
        signature = tuple((str(e.root), e.name, bool(e.manifest)) for e in self.entries)
        changed, self._signature = signature != self._signature, signature
        self.list.blockSignals(True)
        self.list.clear()
        for e in self.entries:
            item = QListWidgetItem(self._label(e))
            item.setData(ROOT_ROLE, str(e.root))
            self.list.addItem(item)
            if str(e.root) == selected:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if explain_missing and selected and self.selected_root() != selected:
            self.ctx.notifier.warning(f"The selected model ({Path(selected).name}) is no longer in the library; it was removed from disk.")
        if not self.list.currentItem() and self.list.count():
            self.list.setCurrentRow(0)
        self._show_selected()
        if changed and announce:
            self.ctx.events.library_changed.emit()

    def _label(self, e: PackEntry) -> str:
        if e.manifest is None:  # a half or damaged pack: listed, never loaded, removable
            return f"⚠ {e.name} - broken"
        m = e.manifest
        state = self.integrity.get(str(e.root), ("unknown", ""))[0]
        mark = {"verified": " ✓", "failed": " ✗"}.get(state, "")
        # an imported checkpoint's family ("Stable Diffusion 2.x Turbo") says more than "stable-diffusion"
        kind = (m.get("config") or {}).get("family_label") or m["architecture"]
        return f"{m['name']}{mark}\n    {m['modality']} · {kind} · {m['precision']}"

    def selected_entry(self) -> PackEntry | None:
        root = self.selected_root()
        return next((e for e in self.entries if str(e.root) == root), None)

    def selected_root(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ROOT_ROLE) if item is not None else None

    def select(self, name: str) -> None:
        for row, e in enumerate(self.entries):
            if e.name == name:
                self.list.setCurrentRow(row)
                return

    def _show_selected(self) -> None:
        entry = self.selected_entry()
        state, text = self.integrity.get(str(entry.root), ("unknown", "")) if entry else ("unknown", "")
        self.details.show_entry(entry, state, text)

    def _on_folder_changed(self, _path: str) -> None:
        if not self._importing:  # our own import refreshes once it is complete
            self._debounce.start()

    # -- actions on the selected pack ---------------------------------------------------
    def _selected_or_explain(self) -> PackEntry | None:
        entry = self.selected_entry()
        if entry is None:
            self.ctx.notifier.error(RequestError("Select a model in the list first."))
            return None
        try:
            if entry.manifest is not None or not entry.root.exists():
                check_still_there(entry)  # a broken pack has no manifest to look for, only its folder
        except PackError as exc:
            self.ctx.notifier.error(exc)
            self.refresh()
            return None
        return entry

    def verify_selected(self) -> GeneratorWorker | None:
        entry = self._selected_or_explain()
        if entry is None or not self._idle():
            return None
        key = str(entry.root)
        worker = GeneratorWorker(verify_pack, entry.root)
        worker.signals.yielded.connect(lambda ev: self._on_verified(key, ev))
        worker.signals.errored.connect(self.ctx.notifier.error)
        self.job_bar.track(worker, f"Verifying {entry.name}…")
        return start(worker)

    def _on_verified(self, key: str, ev) -> None:
        if not isinstance(ev, VerifyResult):
            return
        if ev.ok:
            self.integrity[key] = ("verified", f"Verified: all {ev.files} files match their SHA-256.")
            self.ctx.notifier.info(f"'{ev.name}' verified: all {ev.files} files are intact.")
        else:
            self.integrity[key] = ("failed", f"Integrity check FAILED: {ev.problem} Re-import or re-export this model.")
            self.ctx.notifier.error(PackError(f"'{ev.name}' is damaged: {ev.problem} Re-import or re-export it."))
        self.refresh(announce=False)

    def remove_selected(self) -> bool:
        entry = self._selected_or_explain()
        if entry is None or not self._idle():
            return False
        if not self.confirm(f"Remove '{entry.name}' from the library?\n\nThis deletes {entry.root} from disk.", "Remove model"):
            return False
        try:
            self.ctx.library.remove(str(entry.root))
        except (PackError, OSError) as exc:
            self.ctx.notifier.error(exc if isinstance(exc, PackError) else PackError(f"Could not remove '{entry.name}': {exc}"))
            return False
        self.integrity.pop(str(entry.root), None)
        self.ctx.notifier.info(f"Removed '{entry.name}'.")
        self.refresh()
        return True

    def confirm(self, question: str, title: str) -> bool:
        answer = QMessageBox.question(self, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def confirm_pickle(self, path: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Pickle checkpoint", pickle_warning(path), QMessageBox.StandardButton.Cancel, self)
        convert = box.addButton("Convert anyway", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is convert

    def open_selected_folder(self) -> None:
        entry = self._selected_or_explain()
        if entry is not None:
            open_folder(entry.root, self)  # without a file manager: the path, with Copy

    # -- import -------------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a model folder")
        if folder:
            self.import_path(folder)

    def _choose_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", "", IMPORT_FILTER)
        if path:
            self.import_path(path)

    def import_path(self, path: str | Path, convert_pickle: bool | None = None) -> GeneratorWorker | None:
        """Import a folder, .zip, .gguf or image checkpoint in the background; the new pack is
        selected when done. A pickle checkpoint is converted only if the person agrees
        (``convert_pickle`` None: ask)."""
        if not self._idle():
            return None
        path = Path(path)
        if path.is_file() and is_pickle(path):
            if convert_pickle is None:
                convert_pickle = self.confirm_pickle(path)
            if not convert_pickle:
                self.ctx.notifier.info(f"'{path.name}' was not imported: a pickle checkpoint is converted only with your consent.")
                return None
        worker = GeneratorWorker(_import_job, path, self.ctx.library, bool(convert_pickle))
        worker.signals.yielded.connect(self._on_imported)
        worker.signals.ended.connect(self._import_finished)
        self._importing = True
        self.job_bar.track(worker, f"Importing {Path(path).name}…")
        return start(worker)

    def _on_imported(self, ev) -> None:
        if isinstance(ev, Progress):
            return
        self.integrity[str(ev.root)] = ("verified", "Verified on import: every file matches its SHA-256.")
        self.ctx.notifier.info(f"Imported '{ev.name}' ({ev.modality}, {ev.architecture}, {ev.precision}).")
        notice = import_notice(ev)
        if notice:
            self.ctx.notifier.warning(notice)
        self._just_imported = ev.name

    def _import_finished(self, outcome) -> None:
        if outcome.failed:
            self.ctx.notifier.error(outcome.error)
        elif outcome.stopped:
            self._just_imported = None
            self.ctx.notifier.info("Import cancelled; nothing was added to the library.")
        self._importing = False
        self.refresh()
        if self._just_imported:
            self.select(self._just_imported)
            self._just_imported = None

    def _idle(self) -> bool:
        if self.job_bar.busy:
            self.ctx.notifier.error(RequestError("The library is busy with another job; wait for it or cancel it."))
            return False
        return True

    # -- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.import_path(urls[0])

    # -- Page and Stoppable (desktop/ui/studio.py): Esc cancels an import or a check --------------
    def stop(self) -> None:
        self.job_bar.cancel()

    def shutdown(self) -> None:
        self.job_bar.cancel()


def _import_job(path: Path, library, convert_pickle: bool = False) -> Iterator:
    from desktop.engines.packs.importers import import_path

    if path.is_file() and is_checkpoint(path):  # exported in a child process that Cancel kills
        yield from checkpoint_import_events(path, library, convert_pickle=convert_pickle)
        return
    if path.is_file() and path.suffix.lower() == ".gguf":  # converted layer by layer, cancellable between layers
        from desktop.engines.text.gguf.background import import_gguf_events

        yield from import_gguf_events(path, library)
        return
    yield Progress(f"Importing {path.name} (copying and verifying every file)…", None)
    pack = import_path(path, library)
    try:
        yield pack
    except GeneratorExit:
        # Cancelled while the copy ran: the user said no, so nothing stays behind.
        shutil.rmtree(pack.root, ignore_errors=True)
        raise
