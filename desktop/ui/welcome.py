"""The first-run welcome: what this machine has, which models are installed, and the
bundled models to add - all offline. Shown once (QSettings ``welcome/shown``).

The machine facts need onnxruntime and possibly nvidia-smi, so they are gathered in a
worker while the dialog is already visible.
"""

from __future__ import annotations

from typing import Iterator

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QDialog, QGroupBox, QHBoxLayout, QLabel, QLayout, QPushButton, QVBoxLayout

from desktop import bundled
from desktop.engines.packs.pack import MODALITIES, Pack
from desktop.engines.providers import PROVIDERS
from desktop.pack_info import human_bytes
from desktop.ui.job_bar import JobBar
from desktop.workers import GeneratorWorker, start

SHOWN_KEY = "welcome/shown"
STUDIO_OF = {"text": "Chat", "speech": "Speech", "image": "Image"}


class WelcomeDialog(QDialog):
    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Welcome to Atelier")
        self.setMinimumWidth(560)
        self.info = None
        self._fitting = False
        self._probe: GeneratorWorker | None = None
        lay = QVBoxLayout(self)
        title = QLabel("Welcome to Atelier")
        title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        lay.addWidget(title)
        offline = QLabel(
            "Everything runs on this computer. Atelier has no account, sends nothing anywhere and never "
            "downloads anything: models come with the app or from files you import."
        )
        offline.setWordWrap(True)
        lay.addWidget(offline)

        machine = QGroupBox("This machine")
        ml = QVBoxLayout(machine)
        self.machine = QLabel("Looking at this machine…")
        self.machine.setWordWrap(True)
        self.machine.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        ml.addWidget(self.machine)
        lay.addWidget(machine)

        models = QGroupBox("Models")
        mo = QVBoxLayout(models)
        self.installed = QLabel()
        self.installed.setWordWrap(True)
        self.bundled = QLabel()
        self.bundled.setWordWrap(True)
        self.add_button = QPushButton("Add the bundled models")
        self.add_button.clicked.connect(self.add_bundled)
        self.job_bar = JobBar()
        mo.addWidget(self.installed)
        mo.addWidget(self.bundled)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addStretch(1)
        mo.addLayout(row)
        mo.addWidget(self.job_bar)
        lay.addWidget(models)

        start_button = QPushButton("Start")
        start_button.setDefault(True)
        start_button.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(start_button)
        lay.addLayout(bottom)
        self.finished.connect(lambda _result: self.mark_shown(ctx.settings))
        self.refresh_models()
        self.probe_machine()

    @staticmethod
    def already_shown(settings) -> bool:
        return str(settings.value(SHOWN_KEY, "false")).lower() == "true"

    @staticmethod
    def mark_shown(settings) -> None:
        settings.set_value(SHOWN_KEY, True)

    # -- models ---------------------------------------------------------------------------
    def refresh_models(self) -> None:
        entries = [e for e in self.ctx.library.entries() if e.manifest]
        lines = []
        for modality in MODALITIES:
            names = [e.name for e in entries if e.manifest["modality"] == modality]
            lines.append(f"{STUDIO_OF.get(modality, modality)}: {', '.join(names) if names else 'none installed yet'}")
        self.installed.setText("Installed:\n" + "\n".join(lines))
        self.missing = bundled.not_installed(self.ctx.library)
        shipped = bundled.bundled_packs()
        if not shipped:
            self.bundled.setText("This build ships no models; import your own in the Library tab (a folder or a .zip).")
        elif self.missing:
            size = sum(sum(f["bytes"] for f in m["files"]) for _folder, m in self.missing)
            names = ", ".join(m["name"] for _folder, m in self.missing)
            self.bundled.setText(f"Bundled with the app, not yet in your library ({human_bytes(size)}, copied from disk): {names}")
        else:
            self.bundled.setText("All bundled models are in your library.")
        self.add_button.setVisible(bool(self.missing))
        if self.isVisible():
            self._fit_text()

    def add_bundled(self) -> GeneratorWorker | None:
        if self.job_bar.busy or not self.missing:
            return None
        worker = GeneratorWorker(bundled.install, self.ctx.library, list(self.missing))
        worker.signals.yielded.connect(self._on_added)
        worker.signals.errored.connect(self.ctx.notifier.error)
        worker.signals.finished.connect(self._on_install_finished)
        self.add_button.setEnabled(False)
        self.job_bar.track(worker, "Adding the bundled models…")
        return start(worker)

    def _on_added(self, ev) -> None:
        if isinstance(ev, Pack):
            self.ctx.notifier.info(f"Added '{ev.name}' to your library.")

    def _on_install_finished(self) -> None:
        self.add_button.setEnabled(True)
        self.refresh_models()
        self.ctx.events.library_changed.emit()

    # -- machine ----------------------------------------------------------------------------
    def probe_machine(self) -> GeneratorWorker:
        self._probe = GeneratorWorker(_collect)
        self._probe.signals.yielded.connect(self._show_machine)
        self._probe.signals.errored.connect(self.ctx.notifier.error)
        return start(self._probe)

    def _show_machine(self, info) -> None:
        self.info = info
        offered = [name.upper() for name, ort_name in PROVIDERS.items() if ort_name in info.providers]
        gpu = ", ".join(info.gpus) if info.gpus else "none found"
        accel = "Models will run on the GPU." if any(p != "CPU" for p in offered) else "Models will run on the CPU."
        self.machine.setText(
            f"{info.cpu_name} - {info.cpu_cores} CPU cores, {human_bytes(info.ram_bytes)} of memory\n"
            f"GPU: {gpu}\n"
            f"ONNX Runtime offers: {', '.join(offered) or 'CPU'}. {accel}\n"
            f"{info.os_name}"
        )
        self._fit_text()

    def _fit_text(self) -> None:
        """Grow to show every line that arrived after the dialog was laid out (a dialog
        does not follow its wrapped labels' height on its own), within the screen."""
        lay = self.layout()
        lay.invalidate()  # a wrapped label's new height is not asked for otherwise
        lay.activate()
        # the size hint wraps at the hint's (narrower) width: never less than is needed
        need = max(lay.heightForWidth(self.width()), self.sizeHint().height())
        screen = self.screen().availableGeometry().height() if self.screen() else need
        need = min(need, screen)
        # a minimum, not only a resize: a window manager may map the dialog at the size it
        # had first and drop a resize that came before (seen under openbox); the layout
        # would put back its own (wrap-blind) minimum, so it sets none
        lay.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.setMinimumHeight(need)
        self.resize(self.width(), max(self.height(), need))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_text()
        QTimer.singleShot(0, self._fit_text)  # again once the window manager has mapped it

    def event(self, e) -> bool:
        handled = super().event(e)
        # a label's new text is measured only when its layout request is handled: fit then
        if e.type() == QEvent.Type.LayoutRequest and self.isVisible() and not self._fitting:
            self._fitting = True
            try:
                self._fit_text()
            finally:
                self._fitting = False
        return handled

    def done(self, result: int) -> None:
        self.job_bar.cancel()  # closing the welcome stops a copy in progress
        super().done(result)


def _collect() -> Iterator:
    from desktop.system_info import collect

    yield collect()
