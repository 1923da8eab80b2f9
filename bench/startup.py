"""Start-up, bundle size and self-test of the desktop app, in one table run.

    .venv/bin/python bench/startup.py [--runs 5] [--bundle dist/Atelier] [--no-self-test]

Cold start = from process start (just before exec) to the first painted frame of the main
window with the event loop idle again (the app prints ``atelier-interactive`` then; see
desktop/app.py). Median of N runs, each a fresh process. Baselines on the same machine:
a bare PySide6 window (the floor any Qt app pays) and the issue's target of 1.5 s. The
window runs offscreen unless QT_QPA_PLATFORM says otherwise (e.g. ``DISPLAY=:99
QT_QPA_PLATFORM=xcb`` under Xvfb for a real X11 window), with the models of your library
visible to it, as a user's would be; the OS file cache is warm after the first run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 1.5

BARE_QT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow
app = QApplication(sys.argv)
class W(QMainWindow):
    done = False
    def paintEvent(self, e):
        super().paintEvent(e)
        if not self.done:
            self.done = True
            QTimer.singleShot(0, lambda: (print("atelier-interactive", flush=True), app.quit()))
w = W(); w.setCentralWidget(QLabel("hello")); w.resize(1200, 800); w.show()
app.exec()
"""


def time_to_interactive(cmd: list[str], env: dict[str, str], timeout: float = 60) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "atelier-interactive":
                elapsed = time.perf_counter() - t0
                break
        else:
            raise RuntimeError(f"{cmd[0]} exited without painting a window (exit code {proc.wait()})")
    finally:
        proc.stdout.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return elapsed


def user_like_home() -> Path:
    """A throwaway ATELIER_HOME whose library shows the packs installed for this user
    (linked, not copied) and whose welcome was already seen."""
    from desktop.engines.packs.library import Library

    home = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    models = home / "models"
    models.mkdir()
    real = Library(_real_models_dir())
    for entry in real.entries():
        if entry.manifest:
            (models / entry.root.name).symlink_to(entry.root.resolve(), target_is_directory=True)
    (home / "settings.ini").write_text("[welcome]\nshown=true\n")
    return home


def _real_models_dir() -> Path:
    saved = os.environ.pop("ATELIER_HOME", None)
    try:
        from desktop.engines.packs.library import models_dir

        return models_dir()
    finally:
        if saved is not None:
            os.environ["ATELIER_HOME"] = saved


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / "Atelier")
    ap.add_argument("--no-self-test", action="store_true")
    args = ap.parse_args()

    home = user_like_home()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"), ATELIER_HOME=str(home), ATELIER_STARTUP_PROBE="1")
    models = ", ".join(p.name for p in (home / "models").iterdir()) or "none"
    exe = args.bundle / ("Atelier.exe" if sys.platform == "win32" else "Atelier")
    subjects = [("bare PySide6 window (floor)", [sys.executable, "-c", BARE_QT]), ("python main.py", [sys.executable, "main.py"])]
    if exe.is_file():
        subjects.append((f"bundle {exe.relative_to(ROOT) if exe.is_relative_to(ROOT) else exe}", [str(exe)]))

    print(f"# Atelier start-up - {os.cpu_count()} CPUs, load average {load_average()} (shared machine), "
          f"Qt platform {env['QT_QPA_PLATFORM']}, models in the library: {models}\n")
    print(f"| start to interactive window ({args.runs} runs) | median s | min s | max s | vs floor | target {TARGET_S} s |")
    print("|---|---|---|---|---|---|")
    floor = None
    try:
        for label, cmd in subjects:
            times = [time_to_interactive(cmd, env) for _ in range(args.runs)]
            med = statistics.median(times)
            floor = floor or med
            verdict = "met" if med <= TARGET_S else "MISSED"
            print(f"| {label} | {med:.3f} | {min(times):.3f} | {max(times):.3f} | +{med - floor:.3f} s | {verdict} |", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if not exe.is_file():
        print(f"\n(no bundle at {args.bundle}: build it with bash scripts/build-app)")
        return 0

    internal = args.bundle / "_internal"
    packs = internal / "packs"
    total = folder_size(args.bundle)
    packs_size = folder_size(packs) if packs.is_dir() else 0
    print("\n| bundle on disk | MB |\n|---|---|")
    print(f"| whole app folder | {total / 2**20:.0f} |")
    print(f"| of which default packs (_internal/packs) | {packs_size / 2**20:.0f} |")
    print(f"| app without packs | {(total - packs_size) / 2**20:.0f} |")

    if not args.no_self_test:
        print("\n## bundle self-test (empty library, offscreen)\n")
        with tempfile.TemporaryDirectory() as empty:
            run_env = dict(os.environ, ATELIER_HOME=empty, QT_QPA_PLATFORM="offscreen")
            proc = subprocess.run([str(exe), "--self-test"], env=run_env, capture_output=True, text=True, timeout=600)
        print(proc.stdout.rstrip())
        if proc.returncode:
            print(f"self-test exit code {proc.returncode}: {proc.stderr[-500:]}")
            return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
