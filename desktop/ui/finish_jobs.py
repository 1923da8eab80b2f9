"""Closing the window while a job runs: stop it, then let what it already made arrive.

A stopped job still has events queued for the GUI thread (the images of a batch that were
finished, the audio spoken so far); the studios store those as they arrive. The window
is closing, so nothing would deliver them: a short local event loop does, until the
job's slot reports it idle or the deadline passes (a job stops before its next event,
so this is one denoising step or one sentence at most).
"""

from __future__ import annotations

from PySide6.QtCore import QEventLoop, QTimer

DEADLINE_MS = 20_000


def stop_and_collect(slot, timeout_ms: int = DEADLINE_MS) -> bool:
    """Abort ``slot``'s job and deliver its remaining events; True when it ended in time."""
    if slot.job is None:
        return True
    loop = QEventLoop()
    idle = lambda busy: loop.quit() if not busy else None  # noqa: E731
    slot.busy_changed.connect(idle)
    timer = QTimer(singleShot=True, timeout=loop.quit)
    timer.start(timeout_ms)
    slot.stop()
    if slot.job is not None:
        loop.exec()
    timer.stop()
    slot.busy_changed.disconnect(idle)
    return slot.job is None


def wait_until_idle(slot, ms: int) -> None:
    """Let the job in progress end (its token, its last step) for at most ``ms``, events flowing."""
    if not slot.busy:
        return
    loop = QEventLoop()
    slot.busy_changed.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    slot.busy_changed.disconnect(loop.quit)
