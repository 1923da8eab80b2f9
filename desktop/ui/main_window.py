"""The main window: one tab per studio, a banner for notices, the status bar.

Studios are found through ``STUDIOS`` (module, class); each is constructed with the shared
``AppContext`` so they share settings, the notifier and the library.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from desktop.engines.library import Library
from desktop.settings import Settings
from desktop.ui.notifier import Banner, Notifier

log = logging.getLogger(__name__)

# (tab title, module, class). A studio whose module is missing shows why instead.
STUDIOS = (
    ("Chat", "desktop.ui.chat", "ChatStudio"),
    ("Image", "desktop.ui.image_studio", "ImageStudio"),
    ("Speech", "desktop.ui.speech_studio", "SpeechStudio"),
    ("Library", "desktop.ui.library", "LibraryPage"),
    ("Settings", "desktop.ui.settings_page", "SettingsPage"),
)


@dataclass
class AppContext:
    settings: Settings
    notifier: Notifier
    library: Library


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext | None = None):
        super().__init__()
        self.setWindowTitle("Atelier")
        self.resize(1200, 800)
        banner = Banner()
        if ctx is None:
            ctx = AppContext(Settings(), Notifier(banner), Library())
        else:
            ctx.notifier.banner = banner
        self.ctx = ctx
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(banner)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.studios: dict[str, QWidget] = {}
        for title, module, cls in STUDIOS:
            self.tabs.addTab(self._make_studio(title, module, cls), title)
        ctx.notifier.shown.connect(lambda level, text: self.statusBar().showMessage(text, 10000))
        if ctx.settings.reset_notice:
            ctx.notifier.warning(ctx.settings.reset_notice)
        QShortcut(QKeySequence("Escape"), self, activated=self._stop_current)
        geometry = ctx.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        tab = ctx.settings.value("window/tab", 0)
        self.tabs.setCurrentIndex(int(tab) if str(tab).isdigit() else 0)

    def _make_studio(self, title: str, module: str, cls: str) -> QWidget:
        try:
            widget = getattr(importlib.import_module(module), cls)(self.ctx)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            widget = QLabel(f"The {title} studio is not part of this build.")
        self.studios[title] = widget
        return widget

    def _stop_current(self) -> None:
        stop = getattr(self.tabs.currentWidget(), "stop", None)
        if callable(stop):
            stop()

    def closeEvent(self, event) -> None:
        self.ctx.settings.set_value("window/geometry", self.saveGeometry())
        self.ctx.settings.set_value("window/tab", self.tabs.currentIndex())
        for widget in self.studios.values():
            shutdown = getattr(widget, "shutdown", None)
            if callable(shutdown):
                shutdown()
        super().closeEvent(event)
