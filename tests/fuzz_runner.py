"""Run the fuzz cases with crash and hang isolation.

The cases - every ``tests/fuzz_cases*.py`` module's ``all_cases()``, in name order - run
in a child process that writes one JSON line per case *before* (started) and *after*
(result) each. If the child dies - a segfault in a native runtime, say - or a case hangs
past its time limit, the parent records that case as a crash or hang and starts a new
child at the next case. Each case gets its own sandbox: ``home`` (ATELIER_HOME: the
library), ``out`` (the output folder), ``inputs`` and ``canary``. Per case it records:

* an escape: anything created or changed outside ``home`` and ``out``;
* data loss: a file that existed before the case (in ``out``, ``inputs``, ``canary``)
  is gone or its old bytes are not a prefix of its new ones, the audit log lost
  records, or the case's own check raised :class:`DataLoss`;
* a traceback printed to stderr (a user must see one line, never a traceback);
* network syscalls: with strace available the child runs under ``strace -f`` and each
  inet/inet6/netlink socket or port-53 call is charged to the case running then (the
  child marks each case start with a ``sendto`` on a local socket pair).

``python -m tests.fuzz_runner ROOT`` prints a summary (used by bench/robustness.py).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "atelier-fuzz-case "
NETWORK_CALL = re.compile(r"\b(AF_INET6?|AF_NETLINK|PF_INET6?|PF_NETLINK)\b|htons\(53\)")


class DataLoss(Exception):
    """Raised by a case's own check: something the user had was lost or overwritten."""


def case_modules() -> list[str]:
    """tests.fuzz_cases first, then every other tests/fuzz_cases*.py, by name.
    ``ATELIER_FUZZ_MODULES=fuzz_cases_writes,...`` runs only those (while working on one)."""
    names = sorted(p.stem for p in (ROOT / "tests").glob("fuzz_cases*.py"))
    only = [m.strip() for m in os.environ.get("ATELIER_FUZZ_MODULES", "").split(",") if m.strip()]
    return [f"tests.{n}" for n in names if not only or n in only]


def all_cases() -> list:
    cases = []
    for module in case_modules():
        for case in importlib.import_module(module).all_cases():
            case.module = module.removeprefix("tests.")
            cases.append(case)
    return cases


def _contents(box: Path, folders: tuple[str, ...]) -> dict[str, bytes]:
    """SHA-256 of the first and whole bytes of every file under ``folders`` (data-loss check)."""
    out = {}
    for folder in folders:
        for dirpath, _dirs, files in os.walk(box / folder):
            for name in files:
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                try:
                    out[str(p.relative_to(box))] = p.read_bytes()[: 1 << 22]
                except OSError:
                    continue
    return out


def _lost(before: dict[str, bytes], box: Path) -> list[str]:
    lost = []
    for rel, old in before.items():
        p = box / rel
        try:
            new = p.read_bytes()[: 1 << 22] if p.is_file() and not p.is_symlink() else None
        except OSError:
            new = None
        if new is None:
            lost.append(f"{rel} removed")
        elif not new.startswith(old):
            lost.append(f"{rel} overwritten")
    return lost


def _audit_hashes(box: Path) -> list[str]:
    log = box / "home" / "audit.log"
    if not log.is_file() or log.is_symlink():
        return []
    hashes = []
    for line in log.read_bytes().splitlines():
        try:
            hashes.append(json.loads(line)["hash"])
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
    return hashes


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
    import contextlib
    import io
    import logging
    import socket

    logging.disable(logging.CRITICAL)  # expected failures log warnings; keep the output quiet
    from desktop.engines.errors import AtelierError
    from tests.fuzz_runner import DataLoss  # the class the case modules raise (this file runs as __main__)

    cases = all_cases()
    marker, peer = socket.socketpair()  # AF_UNIX: strace sees each case start, nothing leaves
    with open(results, "a", encoding="utf-8") as log:
        for i in range(start, len(cases)):
            case = cases[i]
            box = root / f"case-{i:04d}"
            for sub in ("home", "out", "inputs", "canary"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            (box / "canary" / "keep.txt").write_text("canary")
            os.environ["ATELIER_HOME"] = str(box / "home")
            record = {"i": i, "name": case.name, "category": case.category, "module": case.module}
            log.write(json.dumps({"started": i}) + "\n")
            log.flush()
            marker.send(f"{MARK}{i}".encode())
            peer.recv(64)  # drained, or the pair's buffer fills and send() blocks after ~200 cases
            before = None
            stderr = io.StringIO()
            try:
                cwd = os.getcwd()
                os.chdir(box / "out")  # relative paths a command writes land in the output folder
                try:
                    action = case.build(box, base)
                    before = _snapshot(box, ("home", "out"))
                    kept, audit_before = _contents(box, ("out", "inputs", "canary")), _audit_hashes(box)
                    with contextlib.redirect_stderr(stderr):
                        action()
                    record["outcome"] = "ok"
                except AtelierError as exc:
                    record.update(outcome="typed", error=type(exc).__name__, message=str(exc)[:400])
                    if not str(exc).strip() or "Traceback" in str(exc):
                        record.update(outcome="untyped", error=f"{type(exc).__name__} with an unclear message")
                except DataLoss as exc:
                    record.update(outcome="data loss", error="DataLoss", message=str(exc)[:400])
                except Exception as exc:  # noqa: BLE001 - the point: find these
                    record.update(outcome="untyped", error=type(exc).__name__, message=str(exc)[:400])
                finally:
                    os.chdir(cwd)
                if "Traceback (most recent call last)" in stderr.getvalue() + record.get("message", ""):
                    record["traceback"] = True
                if before is not None:
                    lost = _lost(kept, box) + [f"audit record {h[:12]} lost" for h in set(audit_before) - set(_audit_hashes(box))]
                    if lost:
                        record.update(outcome="data loss", message=f"lost: {lost[:5]}")
                after = _snapshot(box, ("home", "out"))
                if before is not None and after != before:
                    changed = sorted(set(after.items()) ^ set(before.items()))
                    record.update(outcome="escape", message=f"changed outside the library/output: {changed[:5]}")
            except BaseException as exc:  # noqa: BLE001 - SystemExit and friends count as crashes
                record.update(outcome="crash", error=type(exc).__name__, message=str(exc)[:400])
            log.write(json.dumps(record) + "\n")
            log.flush()


def run_fuzz(root: Path, base: Path, case_timeout: float = 120.0, progress=None, trace_network: bool = True) -> list[dict]:
    """Run every case; returns one record per case (outcome ok/typed/untyped/escape/data
    loss/crash/hang; ``network`` = the case's network syscalls, None when not traced)."""
    root.mkdir(parents=True, exist_ok=True)
    results = root / "results.jsonl"
    results.unlink(missing_ok=True)
    strace = _strace() if trace_network else None
    cases = all_cases()
    total = len(cases)
    done: dict[int, dict] = {}
    start = 0
    while start < total:
        env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
        cmd = [sys.executable, "-m", "tests.fuzz_runner", "--child", str(root), str(base), str(start), str(results)]
        if strace:
            cmd = [strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=socket,connect,sendto,sendmsg", "-o", str(root / f"strace-{start:04d}.log"), *cmd]
        with open(root / "child-stderr.log", "ab") as err:
            # its own process group: a hang is killed with strace and the traced child together
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
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
                _kill_group(proc)
                done[current] = {"i": current, "name": cases[current].name, "category": cases[current].category, "module": cases[current].module, "outcome": "hang", "message": f"no result after {case_timeout:.0f} s"}
                break
            if code is not None:
                if current is not None and current not in done:
                    done[current] = {"i": current, "name": cases[current].name, "category": cases[current].category, "module": cases[current].module, "outcome": "crash", "message": f"the process died (exit {code})"}
                break
            time.sleep(0.05)
        start = (max(done) + 1) if done else total
    network = _network_calls(root) if strace else {}
    for i, rec in done.items():
        rec["network"] = len(network.get(i, [])) if strace else None
        if network.get(i):
            rec["network_calls"] = network[i][:3]
    return [done[i] for i in sorted(done)]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (OSError, AttributeError):  # AttributeError: no process groups on Windows
        proc.kill()
    proc.wait()


def _strace() -> str | None:
    exe = shutil.which("strace")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-f", "-qq", "-e", "trace=network", "-o", os.devnull, "true"], capture_output=True)
    return exe if probe.returncode == 0 else None


def _network_calls(root: Path) -> dict[int, list[str]]:
    """Case index -> its inet/inet6/netlink/DNS syscalls, from the strace logs."""
    calls: dict[int, list[str]] = {}
    for trace in sorted(root.glob("strace-*.log")):
        current = -1
        for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
            if MARK in line:
                m = re.search(MARK + r"(\d+)", line)
                current = int(m.group(1)) if m else current
            elif NETWORK_CALL.search(line):
                calls.setdefault(current, []).append(line.strip()[:200])
    return calls


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
    traced = all(r.get("network") is not None for r in records)
    return {
        "cases": len(records),
        "ok": outcomes["ok"],
        "typed errors": outcomes["typed"],
        "untyped errors": outcomes["untyped"],
        "crashes": outcomes["crash"],
        "hangs": outcomes["hang"],
        "tracebacks": sum(1 for r in records if r.get("traceback")),
        "data loss": outcomes["data loss"],
        "escapes": outcomes["escape"],  # writes outside the library and the output folder
        "network syscalls": sum(r.get("network") or 0 for r in records) if traced else None,
        "by category": dict(Counter(r["category"] for r in records)),
        "by module": dict(Counter(r.get("module", "fuzz_cases") for r in records)),
    }


COLUMNS = ("cases", "crashes", "hangs", "untyped errors", "tracebacks", "data loss", "writes outside", "network syscalls")


def table(records: list[dict]) -> list[tuple[str, dict]]:
    """One row per case module and a total: the fuzz report's columns."""
    rows = []
    modules = sorted({r.get("module", "fuzz_cases") for r in records})
    for name, recs in [(m, [r for r in records if r.get("module", "fuzz_cases") == m]) for m in modules] + [("total", records)]:
        s = summarize(recs)
        rows.append((name, {**{k: s[k] for k in COLUMNS if k in s}, "writes outside": s["escapes"]}))
    return rows


def format_table(records: list[dict]) -> str:
    rows = table(records)
    width = max(len(n) for n, _ in rows)
    lines = [f"{'module':{width}}  " + "  ".join(COLUMNS)]
    for name, row in rows:
        lines.append(f"{name:{width}}  " + "  ".join(f"{('n/a' if row[c] is None else row[c])!s:>{len(c)}}" for c in COLUMNS))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        sys.path.insert(0, str(ROOT))
        from tests.tiny_sources import CACHE_DEFAULT, cached_tiny_text_pack

        recs = run_fuzz(Path(sys.argv[1]), cached_tiny_text_pack(CACHE_DEFAULT), progress=lambda r: print(r["outcome"], r["name"], r.get("error", ""), r.get("message", "")[:150], flush=True))
        print(json.dumps(summarize(recs), indent=2))
        print(format_table(recs))
