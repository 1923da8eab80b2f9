"""Python's cycle collector runs on the GUI thread only.

The collector runs on whichever thread happens to allocate when its counters overflow, which
in this app is often a job's worker thread. When it frees a widget that is only kept alive by
a reference cycle (a closed dialog, a replaced studio panel), the widget's C++ destructor runs
on that worker. Qt cannot unregister timers from another thread, so the widget's running
timers (a cursor blink, a debounce) stay in the GUI thread's timer list. The next time one of
them fires, Qt calls a freed object. A core dump of such a crash showed the GUI thread in
``QTimerInfoList::activateTimers``, with the receiver's memory already reused.

So automatic collection is turned off, and a timer on the GUI thread collects whenever
the counters say a collection is due. This is the same arithmetic as the collector's own
thresholds, done where Qt objects may be deleted (pyqtgraph's GarbageCollector does the same).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 250  # rarely a visible pause: a generation-0 pass over a few hundred new objects


class GuiThreadCollector(QObject):
    """While it exists (and until ``stop``), cycles are collected on the GUI thread only."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_MS):
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._oldest_after_full = len(gc.get_objects(generation=2))
        self._timer = QTimer(self, interval=interval_ms, timeout=self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation that is due, by the collector's own rules; returns
        it (-1: none). A full pass also waits, as CPython's does, until the objects that
        reached the oldest generation since the last full pass are a quarter of those there
        before: a full pass over a process holding torch and Qt takes a few hundred ms."""
        counts, limits = gc.get_count(), self._thresholds
        due = -1
        for generation in range(3):
            if limits[generation] and counts[generation] > limits[generation]:
                due = generation
            else:
                break  # an older generation is only due once the younger ones are
        if due == 2:
            oldest = len(gc.get_objects(generation=2))
            if oldest - self._oldest_after_full < self._oldest_after_full // 4:
                due = 1
        if due >= 0:
            gc.collect(due)
            if due == 2:
                self._oldest_after_full = len(gc.get_objects(generation=2))
        return due

    def stop(self) -> None:
        """Hand collection back to Python (after one full pass here, on the GUI thread)."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

