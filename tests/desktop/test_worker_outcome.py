"""GeneratorWorker.ended(outcome): the worker decides how a job ended, once, so callers
never rebuild it from errored/aborted/finished."""

from __future__ import annotations

import threading

from desktop.engines.errors import AtelierError, RequestError
from desktop.workers import GeneratorWorker, Outcome, start


def run(qtbot, func, *args, on_event=None) -> tuple[Outcome, list[str]]:
    worker = GeneratorWorker(func, *args)
    order: list[str] = []
    if on_event is not None:
        worker.signals.yielded.connect(lambda ev: on_event(worker, ev))
    worker.signals.ended.connect(lambda outcome: order.append("ended"))
    worker.signals.finished.connect(lambda: order.append("finished"))
    with qtbot.waitSignal(worker.signals.ended, timeout=10_000) as blocker:
        start(worker)
    qtbot.waitUntil(lambda: "finished" in order, timeout=10_000)
    return blocker.args[0], order


def test_a_job_that_runs_out_ends_done_before_finished(qtbot):
    outcome, order = run(qtbot, lambda: iter(range(3)))
    assert outcome.done and not outcome.stopped and not outcome.failed and outcome.error is None
    assert order == ["ended", "finished"]


def test_an_aborted_job_ends_stopped(qtbot):
    release = threading.Event()

    def endless():
        i = 0
        while True:
            yield i
            release.wait(5)
            i += 1

    def stop_at_first(worker, _ev):
        worker.abort()
        release.set()

    outcome, _ = run(qtbot, endless, on_event=stop_at_first)
    assert outcome.stopped and outcome.error is None


def test_a_failing_job_ends_failed_with_the_typed_error(qtbot):
    def refuses():
        yield 1
        raise RequestError("That prompt is empty.")

    outcome, _ = run(qtbot, refuses)
    assert outcome.failed and isinstance(outcome.error, RequestError) and str(outcome.error) == "That prompt is empty."


def test_a_bug_in_a_job_ends_failed_with_a_sentence_not_a_traceback(qtbot):
    def buggy():
        yield 1
        raise KeyError("steps")

    outcome, _ = run(qtbot, buggy)
    assert outcome.failed and isinstance(outcome.error, AtelierError)
    assert str(outcome.error).startswith("Something went wrong") and "Traceback" not in str(outcome.error)
