"""Start the Qt application and show the main window.

The window must be usable fast (≤ 1.5 s): nothing here or in the studios' constructors
loads a model or imports onnxruntime; engines load in the background after the first
paint. ``ATELIER_STARTUP_PROBE=1`` prints ``atelier-interactive`` once the first frame is
painted and the event loop is idle again, then quits - bench/startup.py times that.
"""

from __future__ import annotations

import os
import sys

PROBE_ENV = "ATELIER_STARTUP_PROBE"
SHUTDOWN_WAIT_MS = 30_000


def run(argv: list[str]) -> int:
    from desktop.logfile import setup_logging

    setup_logging(console=True)  # details (tracebacks) to logs/atelier.log; one line on stderr
    from PySide6.QtWidgets import QApplication

    from desktop.ui.gui_thread_gc import GuiThreadCollector
    from desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv)
    GuiThreadCollector(app)  # for the app's lifetime: a widget freed on a job's thread leaves its timers behind
    app.setApplicationName("Atelier")
    app.setOrganizationName("Atelier")
    app.setDesktopFileName("atelier")  # matches the .desktop entry: the icon and name in docks
    _set_icon(app)
    window = MainWindow()
    if os.environ.get(PROBE_ENV) == "1":
        window.first_painted.connect(lambda: _report_interactive(app))
    else:
        window.first_painted.connect(window.maybe_show_welcome)
    window.show()
    code = app.exec()
    # Jobs still running (a model loading when the window closed) finish before Python
    # tears down the objects their signals live on; the window is already gone.
    from PySide6.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(SHUTDOWN_WAIT_MS)
    return code


def _report_interactive(app) -> None:
    print("atelier-interactive", flush=True)
    app.quit()


def _set_icon(app) -> None:
    from pathlib import Path

    from PySide6.QtGui import QIcon

    icons = Path(__file__).resolve().parent.parent / "resources" / "icons"
    icon = QIcon()
    for png in sorted(icons.glob("atelier-*.png")):
        icon.addFile(str(png))
    if not icon.isNull():
        app.setWindowIcon(icon)


if __name__ == "__main__":
    sys.exit(run(sys.argv))
