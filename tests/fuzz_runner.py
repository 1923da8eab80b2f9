"""Run the fuzz cases with crash and hang isolation.

The cases run in a child process that writes one JSON line per case *before* (started)
and *after* (result) each. If the child dies - a segfault in a native runtime, say - or a
case hangs past its time limit, the parent records that case as a crash or hang and
starts a new child at the next case. Each case gets its own sandbox:
``home`` (ATELIER_HOME: the library), ``out`` (the output folder), ``inputs`` and
``canary``; anything changed outside ``home`` and ``out`` is reported as an escape.

``python -m tests.fuzz_runner ROOT`` prints a summary (used by bench/robustness.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _snapshot(folder: Path, skip: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        if rel.parts and rel.parts[0] in skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            if not rel.parts and name in skip:
                continue
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out[str(p.relative_to(folder))] = (st.st_size, int(st.st_mtime_ns))
    return out


def _child(root: Path, base: Path, start: int, results: Path) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # expected failures log warnings; keep the output quiet
    from desktop.engines.errors import AtelierError
    from tests.fuzz_cases import all_cases

    cases = all_cases()
    with open(results, "a", encoding="utf-8") as log:
        for i in range(start, len(cases)):
            case = cases[i]
            box = root / f"case-{i:04d}"
            for sub in ("home", "out", "inputs", "canary"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            (box / "canary" / "keep.txt").write_text("canary")
            os.environ["ATELIER_HOME"] = str(box / "home")
            record = {"i": i, "name": case.name, "category": case.category}
            log.write(json.dumps({"started": i}) + "\n")
            log.flush()
            before = None
            try:
                cwd = os.getcwd()
                os.chdir(box / "out")  # relative paths a command writes land in the output folder
                try:
                    action = case.build(box, base)
                    before = _snapshot(box, ("home", "out"))
                    action()
                    record["outcome"] = "ok"
                except AtelierError as exc:
                    record.update(outcome="typed", error=type(exc).__name__, message=str(exc)[:400])
                    if not str(exc).strip() or "Traceback" in str(exc):
                        record.update(outcome="untyped", error=f"{type(exc).__name__} with an unclear message")
                except Exception as exc:  # noqa: BLE001 - the point: find these
                    record.update(outcome="untyped", error=type(exc).__name__, message=str(exc)[:400])
                finally:
                    os.chdir(cwd)
                after = _snapshot(box, ("home", "out"))
                if before is not None and after != before:
                    changed = sorted(set(after.items()) ^ set(before.items()))
                    record.update(outcome="escape", message=f"changed outside the library/output: {changed[:5]}")
            except BaseException as exc:  # noqa: BLE001 - SystemExit and friends count as crashes
                record.update(outcome="crash", error=type(exc).__name__, message=str(exc)[:400])
            log.write(json.dumps(record) + "\n")
            log.flush()


def run_fuzz(root: Path, base: Path, case_timeout: float = 120.0, progress=None) -> list[dict]:
    """Run every case; returns one record per case (outcome ok/typed/untyped/escape/crash/hang)."""
    root.mkdir(parents=True, exist_ok=True)
    results = root / "results.jsonl"
    results.unlink(missing_ok=True)
    from tests.fuzz_cases import all_cases

    total = len(all_cases())
    done: dict[int, dict] = {}
    start = 0
    while start < total:
        env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
        with open(root / "child-stderr.log", "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_runner", "--child", str(root), str(base), str(start), str(results)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        current, since = None, time.monotonic()
        while True:
            code = proc.poll()
            for rec in _read(results):
                if "started" in rec:
                    if rec["started"] != current:
                        current, since = rec["started"], time.monotonic()
                elif rec["i"] not in done:
                    done[rec["i"]] = rec
                    if progress:
                        progress(rec)
            if current is not None and current not in done and time.monotonic() - since > case_timeout:
                proc.kill()
                proc.wait()
                done[current] = {"i": current, "name": all_cases()[current].name, "category": all_cases()[current].category, "outcome": "hang", "message": f"no result after {case_timeout:.0f} s"}
                break
            if code is not None:
                if current is not None and current not in done:
                    done[current] = {"i": current, "name": all_cases()[current].name, "category": all_cases()[current].category, "outcome": "crash", "message": f"the process died (exit {code})"}
                break
            time.sleep(0.05)
        start = (max(done) + 1) if done else total
    return [done[i] for i in sorted(done)]


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def summarize(records: list[dict]) -> dict:
    outcomes = Counter(r["outcome"] for r in records)
    return {
        "cases": len(records),
        "ok": outcomes["ok"],
        "typed errors": outcomes["typed"],
        "untyped errors": outcomes["untyped"],
        "crashes": outcomes["crash"] + outcomes["hang"],
        "escapes": outcomes["escape"],
        "by category": dict(Counter(r["category"] for r in records)),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        sys.path.insert(0, str(ROOT))
        from tests.tiny_sources import CACHE_DEFAULT, cached_tiny_text_pack

        recs = run_fuzz(Path(sys.argv[1]), cached_tiny_text_pack(CACHE_DEFAULT), progress=lambda r: print(r["outcome"], r["name"], r.get("error", ""), r.get("message", "")[:150], flush=True))
        print(json.dumps(summarize(recs), indent=2))
