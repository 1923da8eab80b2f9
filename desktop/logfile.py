"""The log file: where details (tracebacks, library warnings) go instead of the terminal.

The CLI promises one clear line on stderr per failure and the window shows one sentence;
the details a bug report needs land in ``<data folder>/logs/atelier.log`` (rotated at
1 MB, three old files kept). Opened without following symlinks and created private
(0600), so a planted link cannot redirect the writes; a log that cannot be written (a
read-only or full disk) is silently skipped - logging must never become the failure.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

LOG_NAME = "atelier.log"
MAX_BYTES = 1 << 20
BACKUPS = 3
_FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def log_path() -> Path:
    from desktop.engines.packs.library import data_dir

    return data_dir() / "logs" / LOG_NAME


def _open_private(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)


class SafeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that never follows a symlink and never prints its own
    failures (the stock handler writes a traceback to stderr when a write fails)."""

    def _open(self):
        return io.open(_open_private(Path(self.baseFilename)), "a", encoding="utf-8", errors="backslashreplace", closefd=True)

    def handleError(self, record) -> None:  # noqa: N802 - logging's name
        pass


def setup_logging(level: int = logging.INFO, console: bool = False) -> Path | None:
    """Route every log record to the log file (and, for the window, a one-line echo on
    stderr: no tracebacks there). Also catches Python warnings and exceptions that
    escape threads or destructors. Returns the log's path, or None if it cannot be opened."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_atelier", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    path: Path | None = None
    try:
        path = log_path()
        os.close(_open_private(path))  # fail here (read-only home, a planted link), not at the first record
    except (OSError, ValueError):
        path = None
    handler: logging.Handler
    if path is not None:
        handler = SafeRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, delay=True)
        handler.setFormatter(logging.Formatter(_FORMAT))
    else:
        handler = logging.NullHandler()
    handler._atelier = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if console:
        echo = logging.StreamHandler(sys.stderr)
        echo.setLevel(logging.WARNING)
        echo.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
        echo._atelier = True  # type: ignore[attr-defined]
        root.addHandler(echo)
    logging.captureWarnings(True)
    logging.raiseExceptions = False  # a failing handler must not print "--- Logging error ---"
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisable_hook
    return path


class _OneLineFormatter(logging.Formatter):
    """No traceback, no stack, no embedded newlines or control characters."""

    def format(self, record: logging.LogRecord) -> str:
        from desktop.console import safe_text

        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return safe_text(super().format(record), one_line=True)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _thread_excepthook(args) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("atelier.thread").error(
        "uncaught exception in thread %s", getattr(args.thread, "name", "?"), exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _unraisable_hook(unraisable) -> None:
    logging.getLogger("atelier.unraisable").warning(
        "ignored exception in %r", unraisable.object, exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    )


@contextlib.contextmanager
def native_stderr_to_log(path: Path | None):
    """While inside, what native libraries write straight to file descriptor 2
    (onnxruntime's logger, a Rust panic's message and backtrace) goes to the log file;
    Python's ``sys.stderr`` keeps the terminal. Only for a process whose ``sys.stderr``
    is the real fd 2 (the CLI run from a shell), never under a capturing test harness."""
    stderr = sys.stderr
    try:
        real = stderr is sys.__stderr__ and stderr is not None and stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if path is None or not real:
        yield
        return
    try:
        stderr.flush()
        saved = os.dup(2)
        log_fd = _open_private(path)
    except OSError:
        yield
        return
    terminal = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding=stderr.encoding or "utf-8", errors="backslashreplace", line_buffering=True, write_through=True)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = terminal
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            terminal.flush()
        sys.stderr = stderr
        os.dup2(saved, 2)
        os.close(saved)
        with contextlib.suppress(Exception):
            terminal.close()
