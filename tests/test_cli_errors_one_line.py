"""stderr carries one line per failure; tracebacks, library warnings and native libraries'
own messages go to the rotating log file in the data folder (logs/atelier.log), which the
window uses too. The log is written safely: never through a planted symlink, never a
crash when it cannot be written."""

from __future__ import annotations

import logging
import shutil
import threading

import pytest

from desktop.logfile import LOG_NAME, log_path, setup_logging
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.test_cli import cli, env_with
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


def _log(home) -> str:
    path = home / "logs" / LOG_NAME
    return path.read_text(encoding="utf-8") if path.is_file() else ""


@pytest.fixture
def restore_logging():
    """setup_logging changes process-wide hooks; put pytest's back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, threading.excepthook, __import__("sys").unraisablehook, logging.raiseExceptions)
    yield
    import sys

    for h in list(root.handlers):
        if h not in saved[0]:
            root.removeHandler(h)
            h.close()
    root.setLevel(saved[1])
    threading.excepthook, sys.unraisablehook, logging.raiseExceptions = saved[2], saved[3], saved[4]
    logging.captureWarnings(False)


def test_load_failure_is_one_line_and_the_traceback_is_in_the_log(tiny_text_pack, tmp_path, atelier_home):  # noqa: F811
    from tests.fuzz_cases import _rehash

    pack = tmp_path / "broken"
    shutil.copytree(tiny_text_pack, pack)
    model = pack / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    _rehash(pack)
    r = cli("text", "--model", str(pack), "--prompt", "hi", env=env_with(atelier_home))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr and "onnxruntime" not in r.stderr.split(":", 1)[0]
    assert "Traceback" in _log(atelier_home)


def test_failed_audit_write_leaves_the_job_done_and_stderr_clean(tiny_voice, tmp_path, atelier_home):  # noqa: F811
    atelier_home.mkdir(parents=True, exist_ok=True)
    (atelier_home / "audit.log").mkdir()  # appending to it fails: the audit must not fail the job
    r = cli("speak", "--model", str(tiny_voice), "--text", "hi", "--out", str(tmp_path / "a.wav"), env=env_with(atelier_home))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "could not append" not in r.stderr, r.stderr
    assert r.stderr.startswith("wrote ") and r.stderr.count("\n") == 1
    assert "could not append to the audit log" in _log(atelier_home) and "Traceback" in _log(atelier_home)


def test_warnings_and_thread_errors_go_to_the_log_not_the_terminal(atelier_home):
    """In a process of its own: pytest replaces the warning and thread hooks in-process."""
    import subprocess
    import sys

    from tests.test_cli import ROOT

    code = (
        "import logging, threading, warnings\n"
        "from desktop.logfile import setup_logging\n"
        "setup_logging()\n"
        "warnings.warn('a library grumbles', UserWarning)\n"
        "t = threading.Thread(target=lambda: 1 / 0, name='worker-x'); t.start(); t.join()\n"
        "logging.getLogger('desktop.engines.base').warning('loading failed', exc_info=ValueError('boom'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_with(atelier_home), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = _log(atelier_home)
    assert "grumbles" in text and "ZeroDivisionError" in text and "worker-x" in text and "boom" in text


def test_window_echo_is_one_line_without_traceback(restore_logging, atelier_home, capsys):
    setup_logging(console=True)
    try:
        raise RuntimeError("first line\nsecond line \x1b[2J")
    except RuntimeError:
        logging.getLogger("desktop.workers").exception("worker job failed")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err and "worker job failed" in err
    assert "Traceback" in log_path().read_text(encoding="utf-8")


def test_log_never_follows_a_planted_symlink(restore_logging, atelier_home, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    (atelier_home / "logs").mkdir(parents=True)
    (atelier_home / "logs" / LOG_NAME).symlink_to(target)
    assert setup_logging() is None  # no log rather than writing through the link
    logging.getLogger("x").error("secret details")
    assert target.read_text() == "keep"


def test_unwritable_log_is_skipped_silently(restore_logging, atelier_home, capfd):
    (atelier_home / "logs").mkdir(parents=True)
    (atelier_home / "logs" / LOG_NAME).mkdir()  # cannot be opened as a file
    assert setup_logging() is None
    logging.getLogger("x").error("nowhere to go")
    assert "Logging error" not in capfd.readouterr().err


def test_log_is_private_and_rotates(restore_logging, atelier_home):
    from desktop import logfile

    path = setup_logging()
    assert (path.stat().st_mode & 0o777) == 0o600
    big = "x" * 10_000
    for _ in range(logfile.MAX_BYTES // 10_000 + 20):
        logging.getLogger("x").info(big)
    assert path.with_name(LOG_NAME + ".1").is_file() and path.stat().st_size < logfile.MAX_BYTES + 20_000


def test_cli_writes_its_details_to_the_log_of_the_data_folder(atelier_home):
    r = cli("verify", str(atelier_home / "nothing.png"), env=env_with(atelier_home))
    assert r.returncode == 66 and r.stderr.count("\n") == 1
    assert "No such file" in _log(atelier_home)
