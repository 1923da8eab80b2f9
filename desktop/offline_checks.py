"""The "Offline" status in Settings: named checks, each saying what it verified.

This is the hook for the verifiably-offline work (issue 5): register a check with
``@offline_check("what is checked")`` in a module listed in ``CHECK_MODULES`` (imported
lazily; a missing one is skipped). A check returns ``(ok, detail)``, where ``detail``
tells a person what was looked at. Checks must be quick and never touch the network
themselves. The Settings page runs them in a worker and lists every result.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

# Modules that register further checks (issue 5's live in desktop/offline_audit.py).
CHECK_MODULES: tuple[str, ...] = ("desktop.offline_audit",)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


_CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {}


def offline_check(name: str):
    def deco(func: Callable[[], tuple[bool, str]]):
        _CHECKS[name] = func
        return func

    return deco


def run_checks() -> Iterator[CheckResult]:
    """Run every registered check; a check that crashes is a failed check, not a crash."""
    for module in CHECK_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    for name, check in list(_CHECKS.items()):
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - report, never break the Settings page
            ok, detail = False, f"the check itself failed: {exc}"
        yield CheckResult(name, bool(ok), detail)


@offline_check("No network sockets open in this process")
def _no_inet_sockets() -> tuple[bool, str]:
    """Looks at the sockets the process really holds (native code included), not at
    what Python intercepted."""
    if not sys.platform.startswith("linux"):
        return True, "not checked on this OS (reads /proc on Linux)"
    inodes = _socket_inodes()
    inet = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/self/net/{table}") as fh:
                next(fh, None)  # header
                for line in fh:
                    cols = line.split()
                    if len(cols) > 9 and cols[9] in inodes:
                        inet.add(f"{table} {cols[2]}")
        except OSError:
            continue
    if inet:
        return False, f"{len(inet)} network socket(s) open: {', '.join(sorted(inet))}"
    return True, f"{len(inodes)} open socket(s), all local (no TCP/UDP), read from /proc"


def _socket_inodes() -> set[str]:
    found = set()
    fd_dir = "/proc/self/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found
