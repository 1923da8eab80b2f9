"""The main window: one tab per studio, a banner for notices, the status bar.

Studios are found through ``STUDIOS`` (module, class); each is constructed with the shared
``AppContext`` so they share settings, the notifier and the library.
"""

from __future__ import annotations

import importlib
import logging
import weakref
from dataclasses import dataclass, field

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.activity_indicator import ActivityIndicator
from desktop.ui.app_events import AppEvents
from desktop.ui.notifier import Banner, Notifier
from desktop.ui.studio import AsksBeforeClosing, Page, Stoppable, Studio
from desktop.ui.theme import apply_theme
from desktop.ui.window_geometry import WindowGeometry

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
    # library_changed / settings_changed for studios to listen to (see app_events.py)
    events: AppEvents = field(default_factory=AppEvents)


GENERATE_KEYS = ("Ctrl+Return", "Ctrl+Enter")  # a Studio's primary action


class MainWindow(QMainWindow):
    # emitted once, when the first frame is painted and the event loop is free again:
    # the moment the window is interactive (start-up is measured to here)
    first_painted = Signal()
    # a notice about the audit log (damage found while recording); recorded on worker threads
    audit_notice = Signal(str)

    def __init__(self, ctx: AppContext | None = None):
        super().__init__()
        self._painted = False
        self.closed = False  # once closed, audit notices no longer go to this window
        self.setWindowTitle("Atelier")
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
        self._connect_studios()
        self.audit_notice.connect(ctx.notifier.warning, Qt.ConnectionType.QueuedConnection)
        _listen_to_audit_notices(self)
        ctx.notifier.shown.connect(lambda level, text: self.statusBar().showMessage(text, 10000))
        self.activity = ActivityIndicator()
        self.statusBar().addPermanentWidget(self.activity)
        ctx.notifier.activity.connect(self.activity.on_activity)
        ctx.events.settings_changed.connect(self._apply_theme)
        self._apply_theme()
        if ctx.settings.reset_notice:
            ctx.notifier.warning(ctx.settings.reset_notice)
        QShortcut(QKeySequence("Escape"), self, activated=self._stop_current)
        self.geometry_keeper = WindowGeometry(self, ctx.settings)
        self.geometry_keeper.restore()
        self._restore_splitters()
        tab = ctx.settings.value("window/tab", 0)
        self.tabs.setCurrentIndex(int(tab) if str(tab).isdigit() else 0)
        self.first_painted.connect(_empty_old_trash)  # after the first frame: start-up pays nothing

    def _make_studio(self, title: str, module: str, cls: str) -> QWidget:
        try:
            widget = getattr(importlib.import_module(module), cls)(self.ctx)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            widget = QLabel(f"The {title} studio is not part of this build.")
        self.studios[title] = widget
        self._bind_generate_keys(widget)
        return widget

    def _connect_studios(self) -> None:
        """What one studio makes that another shows: Chat's read-aloud clips in Speech's list."""
        chat, speech = self.studios.get("Chat"), self.studios.get("Speech")
        if hasattr(chat, "clip_saved") and callable(getattr(speech, "add_clip", None)):
            chat.clip_saved.connect(speech.add_clip)
        library = self.studios.get("Library")
        if isinstance(chat, QWidget) and callable(getattr(library, "import_path", None)):
            from desktop.ui.gguf_drop import GgufDrop  # a .gguf dropped on the Chat imports in the Library

            self.chat_drop = GgufDrop(chat)
            self.chat_drop.dropped.connect(lambda path: (self.tabs.setCurrentWidget(library), library.import_path(path)))
        image = self.studios.get("Image")
        if isinstance(image, QWidget) and callable(getattr(library, "import_path", None)):
            from desktop.engines.image.checkpoint import CHECKPOINT_SUFFIXES
            from desktop.ui.gguf_drop import GgufDrop  # a checkpoint dropped on the Image studio imports in the Library

            self.image_drop = GgufDrop(image, CHECKPOINT_SUFFIXES)
            self.image_drop.dropped.connect(lambda path: (self.tabs.setCurrentWidget(library), library.import_path(path)))

    def _bind_generate_keys(self, widget: QWidget) -> None:
        """Ctrl+Enter calls a Studio's ``primary_action``. The shortcut belongs to the studio
        widget, so it is only live while that tab shows; a studio that already binds the keys
        itself keeps its own (two live bindings of one key would cancel each other)."""
        if not isinstance(widget, Studio):
            return
        taken = {sc.key().toString() for sc in widget.findChildren(QShortcut)}
        for keys in GENERATE_KEYS:
            if QKeySequence(keys).toString() not in taken:
                QShortcut(QKeySequence(keys), widget, activated=widget.primary_action)

    def _splitters(self) -> list[tuple[str, QSplitter]]:
        # keyed by studio and order of creation: stable as long as a studio's layout is
        return [(f"layout/{title}/splitter{i}", sp) for title, w in self.studios.items() for i, sp in enumerate(w.findChildren(QSplitter))]

    def _restore_splitters(self) -> None:
        for key, splitter in self._splitters():
            state = self.ctx.settings.value(key)
            if isinstance(state, QByteArray):
                splitter.restoreState(state)

    def _apply_theme(self) -> None:
        apply_theme(self.ctx.settings.load().theme)

    def maybe_show_welcome(self) -> None:
        """The first-run welcome, once per user (a QSettings flag)."""
        from desktop.ui.welcome import WelcomeDialog

        if WelcomeDialog.already_shown(self.ctx.settings):
            return
        self.welcome = WelcomeDialog(self.ctx, self)
        self.welcome.open()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self.first_painted.emit)

    def _stop_current(self) -> None:
        page = self.tabs.currentWidget()
        if isinstance(page, Stoppable):
            page.stop()

    def closeEvent(self, event) -> None:
        for widget in self.studios.values():
            if isinstance(widget, AsksBeforeClosing) and not widget.confirm_close():
                event.ignore()  # the person chose to stay (or a save failed and said why)
                return
        self.geometry_keeper.save()
        self.ctx.settings.set_value("window/tab", self.tabs.currentIndex())
        for key, splitter in self._splitters():
            self.ctx.settings.set_value(key, splitter.saveState())
        self.closed = True
        self.setEnabled(False)  # studios may take a moment to store a stopped job's output
        for widget in self.studios.values():
            if isinstance(widget, Page):
                widget.shutdown()
        super().closeEvent(event)


def _listen_to_audit_notices(window: MainWindow) -> None:
    """Forward audit-log notices to the window's banner. The listener may run on any thread:
    it only emits a signal (queued to the GUI thread); it holds the window weakly, so a
    closed window is not kept alive by the audit module's list of listeners."""
    import shiboken6

    from desktop.outputs.audit import add_notice_listener

    ref = weakref.ref(window)

    def forward(text: str) -> None:
        w = ref()
        banner = getattr(w, "ctx", None) and w.ctx.notifier.banner
        if w is not None and shiboken6.isValid(w) and not w.closed and banner is not None and shiboken6.isValid(banner):
            w.audit_notice.emit(text)

    add_notice_listener(forward)


def _empty_old_trash() -> None:
    """Deleted images and clips wait in the trash for Undo; after KEEP_DAYS they go."""
    from desktop.outputs.folders import trash_folders
    from desktop.outputs.trash import Trash

    for folder in trash_folders(Settings().load().output_dir):  # the output folder keeps its own
        try:
            Trash(folder).empty()
        except OSError as exc:
            log.warning("could not empty the trash: %s", exc)
