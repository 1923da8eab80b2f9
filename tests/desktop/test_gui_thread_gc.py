"""Reference cycles are freed on the GUI thread, never on a job's worker thread.

Python's collector runs on whichever thread allocates when its counters overflow. A widget
freed that way on a worker leaves its running timers in the GUI thread's timer list, and the
next one to fire calls freed memory: the full suite crashed so, in the GUI thread's timer
dispatch, during an image job. These tests watch where a cycle is freed, using a plain
object, so that a regression fails the test without crashing the suite."""

from __future__ import annotations

import gc
import threading

from desktop.ui.gui_thread_gc import GuiThreadCollector


class Cycle:
    def __init__(self, freed_on: list):
        self.me, self.freed_on = self, freed_on

    def __del__(self):
        self.freed_on.append(threading.get_ident())


def _allocate_on_a_worker(keep: list) -> None:
    """Allocate as a job does: enough tracked objects to pass the collector's thresholds."""

    def job():
        keep.extend([] for _ in range(20 * max(gc.get_threshold()[0], 1)))

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()


def test_a_cycle_is_freed_on_the_gui_thread_while_a_worker_allocates(qtbot):
    freed_on: list[int] = []
    Cycle(freed_on)  # unreachable now: only the collector can free it
    keep: list = []
    _allocate_on_a_worker(keep)
    assert freed_on == [], "the worker's allocations ran the collector on the worker"
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5_000)  # the GUI thread's check collects it
    assert freed_on == [threading.get_ident()]


def test_without_the_gui_collector_the_worker_would_free_it(qapp):
    """The hazard itself, so the first test cannot pass by accident."""
    was = gc.isenabled()  # off: the suite's fixture runs the GUI collector for Qt tests
    gc.enable()
    try:
        freed_on: list[int] = []
        Cycle(freed_on)
        keep: list = []
        _allocate_on_a_worker(keep)
        assert freed_on and freed_on[0] != threading.get_ident()
    finally:
        if not was:
            gc.disable()


def test_stop_hands_collection_back_to_python(qapp):
    was = gc.isenabled()
    gc.enable()
    collector = GuiThreadCollector(qapp)
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()
    if not was:
        gc.disable()


def _make_every_generation_due(keep: list) -> None:
    low, middle, high = gc.get_threshold()
    for _ in range(high + 1):
        gc.collect(1)  # each counts once towards the oldest generation
    for _ in range(middle + 1):
        gc.collect(0)
    keep.extend([] for _ in range(low + 100))


def test_a_full_pass_waits_until_the_oldest_generation_has_grown_by_a_quarter(qapp):
    was = gc.isenabled()
    collector = GuiThreadCollector(qapp, interval_ms=60_000)  # driven by hand below
    keep: list = []
    try:
        collector._oldest_after_full = 10**9  # as if the last full pass left a huge heap
        _make_every_generation_due(keep)
        assert collector.collect_due() == 1, "a full pass ran although the heap barely grew"
        collector._oldest_after_full = 0
        _make_every_generation_due(keep)
        assert collector.collect_due() == 2
    finally:
        collector.stop()
        if not was:
            gc.disable()
