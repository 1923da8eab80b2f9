"""Verifiably offline: every job runs with socket creation intercepted and makes zero
attempts; the CLI jobs also succeed inside a network-less namespace (``unshare -n``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import offline
from desktop.offline import app_checks, guard, telemetry_switch
from desktop.offline.checks import run_checks
from tests.offline_jobs import JOBS, SLOW_JOBS, count_attempts
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.tiny_sd import tiny_sd_pack
from tests.tiny_sources import tiny_text_pack, tiny_text_source  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]


# -- the guard itself ----------------------------------------------------------------------
def test_guard_records_and_blocks_internet_sockets_but_not_unix_ones():
    with offline.NetworkGuard(block=True) as guard:
        a, b = socket.socketpair()  # AF_UNIX: stays on the machine
        a.close(), b.close()
        with pytest.raises(offline.NetworkBlockedError, match="offline"):
            socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(offline.NetworkBlockedError):
            socket.create_connection(("192.0.2.1", 80), timeout=0.01)
        with pytest.raises(offline.NetworkBlockedError):
            socket.getaddrinfo("example.com", 443)
    assert [a.what.split("(")[0] for a in guard.attempts] == ["socket", "create_connection", "getaddrinfo"]
    assert socket.socket.__name__ == "socket" and socket.socket.__module__ == "socket"  # restored


def test_guard_follows_python_child_processes(tmp_path):
    guard = offline.NetworkGuard(block=False, follow_children=True)
    try:
        with guard:
            code = "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.close()"
            subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
        attempts = guard.all_attempts()
    finally:
        guard.close()
    assert len(attempts) == 1 and "AF_INET6" in attempts[0].what


APP_CHECKS = [
    "No network sockets open in this process",
    "Network guard refuses internet sockets",
    "No update checks or network code in the app",
    "Telemetry switched off (onnxruntime, genai, Hugging Face)",
    "Fonts and icons are local",
]
HUB_CHECK = "Exports of local files run with Hugging Face offline"


def test_offline_checks_list_what_was_checked(monkeypatch):
    monkeypatch.delenv(offline.ALLOW_ENV, raising=False)
    for key in telemetry_switch.TELEMETRY_OFF_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(guard, "_RUNTIME_GUARD", None)
    results = {r.name: r for r in run_checks()}
    assert set(results) == {*APP_CHECKS, HUB_CHECK}  # the export side's check arrives through the registry
    for name in ("No update checks or network code in the app", HUB_CHECK, "Fonts and icons are local"):
        assert results[name].ok, results[name].detail
    assert not results["Telemetry switched off (onnxruntime, genai, Hugging Face)"].ok  # nothing set yet in this process
    assert not results["Network guard refuses internet sockets"].ok
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # conftest's value survives the export check

    installed = offline.NetworkGuard(block=True).install()
    monkeypatch.setattr(guard, "_RUNTIME_GUARD", installed)
    # as main.py leaves it (pytest itself did not start through main.py; see test_offline_telemetry.py)
    monkeypatch.setattr(telemetry_switch, "_NATIVE_SWITCH", "at start")
    monkeypatch.setenv(telemetry_switch.NATIVE_TELEMETRY_ENV, "1")
    try:
        offline.apply_offline_defaults()
        results = list(run_checks())
        assert all(r.ok for r in results), [f"{r.name}: {r.detail}" for r in results]
        with pytest.raises(offline.NetworkBlockedError):
            socket.getaddrinfo("example.org", 80)
        row = {r.name: r for r in run_checks()}["Network guard refuses internet sockets"]
        assert not row.ok and "example.org" in row.detail
    finally:
        installed.uninstall()


def test_a_check_provider_that_is_not_installed_is_skipped_but_a_broken_one_raises(tmp_path, monkeypatch):
    from desktop.offline.checks import load_providers

    assert load_providers(("desktop.offline.app_checks", "no_such_package.checks", "desktop.offline.no_such_module")) == ["desktop.offline.app_checks"]
    (tmp_path / "broken_checks.py").write_text("import no_such_dependency_of_a_provider\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        load_providers(("broken_checks",))


def test_source_scan_finds_a_network_import(tmp_path):
    bad = tmp_path / "updater.py"
    bad.write_text("import json\nfrom urllib.request import urlopen\nfrom PySide6 import QtNetwork\n")
    fine = tmp_path / "fine.py"
    fine.write_text("from desktop.engines.validate_once_helper import x\nimport socketserver_like_name\n")
    hits = app_checks.network_imports([bad, fine])
    assert hits == ["updater.py: urllib.request", "updater.py: PySide6.QtNetwork"]


# -- every job, intercepted -----------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_image(cache_dir):
    return tiny_sd_pack(cache_dir)


@pytest.mark.parametrize("job", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_JOBS else name for name in JOBS])
def test_job_makes_no_network_attempt(job, tmp_path, tiny_text_pack, tiny_text_source, tiny_voice, tiny_image):  # noqa: F811
    packs = dict(text_pack=tiny_text_pack, text_source=tiny_text_source, voice_pack=tiny_voice, image_pack=tiny_image)
    result, attempts = count_attempts(JOBS[job], tmp_path / "work", **packs)
    assert result  # the job really produced something
    assert attempts == [], f"{job} tried the network: {attempts}"


# -- the CLI in a network-less namespace -----------------------------------------------------
def _unshare_prefix() -> list[str]:
    """``unshare -n`` as root, else a user namespace that maps us to root."""
    exe = shutil.which("unshare")
    if exe is None:
        return []
    for prefix in ([exe, "-n"], [exe, "-r", "-n"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=20).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return []


@pytest.mark.slow
def test_cli_jobs_succeed_without_a_network(tmp_path, tiny_text_pack, tiny_text_source, tiny_voice, tiny_image):  # noqa: F811
    prefix = _unshare_prefix()
    if not prefix:
        pytest.skip("unshare -n is unavailable here (needs root or user namespaces); CI runs this as root")
    env = dict(os.environ, ATELIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    env.pop(offline.ALLOW_ENV, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    # The namespace really has no route out: only the loopback device exists.
    probe = run("-c", "import socket; print([name for _, name in socket.if_nameindex()])")
    assert probe.returncode == 0 and probe.stdout.strip() in ("['lo']", "[]"), probe.stdout + probe.stderr
    jobs = [
        ("models", "import", str(tiny_text_pack), "--name", "tiny"),
        ("models", "verify", "tiny"),
        ("text", "--model", "tiny", "--prompt", "Hello", "--max-tokens", "8", "--seed", "1"),
        ("export", "text", str(tiny_text_source), "--out", str(tmp_path / "exported"), "--precision", "fp32", "--force"),
        ("models", "import", str(tmp_path / "exported"), "--name", "exported"),
        ("text", "--model", "exported", "--prompt", "Hi", "--max-tokens", "4"),
        ("models", "import", str(tiny_voice), "--name", "voice"),
        ("speak", "--model", "voice", "--text", "No network here.", "--out", str(tmp_path / "a.wav")),
        ("models", "import", str(tiny_image), "--name", "painter"),
        ("image", "--model", "painter", "--prompt", "a red apple", "--steps", "2", "--out", str(tmp_path / "b.png")),
        ("verify", str(tmp_path / "b.png")),
        ("verify", str(tmp_path / "a.wav")),
        ("audit", "verify"),
    ]
    for args in jobs:
        proc = run("main.py", *args)
        assert proc.returncode == 0, f"{' '.join(args)} failed offline: {proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr


def test_settings_offline_status_runs_these_checks():
    results = {r.name: r for r in run_checks()}
    assert all(name in results for name in [*APP_CHECKS, HUB_CHECK]), sorted(results)
    assert results["No update checks or network code in the app"].ok
    assert "modules scanned" in results["No update checks or network code in the app"].detail
