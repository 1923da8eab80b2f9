"""An export started by the app ends when the app does.

The app runs exports in a child process (torch stays out of the app) and kills it on Cancel
or on close. If the app itself is killed outright (SIGKILL, a crash) nothing kills the child,
and a conversion of a multi-gigabyte checkpoint would go on for many minutes, holding memory,
for a result nobody will take. The app names itself in ``ATELIER_PARENT_PID``; the export
watches for that parent to disappear (its parent id changes when it is re-parented) and
then stops itself and the process group it leads (a pickle conversion's own child too).
"""

from __future__ import annotations

import os
import signal
import threading
import time

PARENT_ENV = "ATELIER_PARENT_PID"
POLL_SECONDS = 0.5


def exit_with_parent() -> threading.Thread | None:
    """Start the watch when the app asked for it; None when run by a person from a shell."""
    try:
        parent = int(os.environ.pop(PARENT_ENV, ""))  # popped: our own children have another parent
    except ValueError:
        return None
    watch = threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True)
    watch.start()
    return watch


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    if os.getpgrp() == os.getpid():  # the app gave the export its own group: end all of it
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(130)
