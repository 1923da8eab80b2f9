"""The app's own checks for the Settings page's "Offline" status.

Each says what it looked at: the guard's record, a scan of our sources for network code,
the telemetry switches, the UI's assets, and the sockets the process really holds. Cheap:
a scan of our own sources, a look at switches and at /proc.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from desktop.offline import guard
from desktop.offline.checks import offline_check
from desktop.offline.telemetry_switch import NATIVE_RUNTIME_MODULES, TELEMETRY_OFF_ENV, native_telemetry_status

DESKTOP = Path(__file__).resolve().parents[1]
# The guard itself wraps ``socket``: the one app module that must import it to refuse it.
GUARD_SOURCE = Path(guard.__file__).resolve()
# Modules whose import in app code would mean a network code path (update checks, fetches).
NETWORK_MODULES = ("socket", "urllib.request", "http.client", "requests", "httpx", "aiohttp", "urllib3", "ftplib", "smtplib", "xmlrpc", "QtNetwork", "QtWebEngineCore", "websocket")
# The local API server binds a listening socket (and only that: guard.listening_socket),
# so its package may import ``socket``; every other network module stays banned there too.
SERVER_PACKAGE = "server"
REMOTE_ASSET_MARKERS = ("QNetworkAccessManager", "QWebEngine", "url(http", 'QUrl("http', "QUrl('http", 'QIcon("http', "QIcon('http")


@offline_check("No network sockets open in this process")
def no_inet_sockets() -> tuple[bool, str]:
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


@offline_check("Network guard refuses internet sockets")
def guard_installed() -> tuple[bool, str]:
    active = guard.runtime_guard()
    if active is None:
        if os.environ.get(guard.ALLOW_ENV) == "1":
            return False, f"off: {guard.ALLOW_ENV}=1 allows network access"
        return False, "not installed in this process"
    if active.attempts:
        last = active.attempts[-1]
        return False, f"blocked {len(active.attempts)} connection attempt(s), last: {last.what} at {last.where}"
    listening = guard.listening_on()
    served = f"; the local API server listens on {', '.join(listening)} (inbound only)" if listening else ""
    return True, f"internet sockets are refused; 0 attempts since start{served}"


def app_sources() -> list[Path]:
    return sorted(p for p in DESKTOP.rglob("*.py") if p.resolve() != GUARD_SOURCE)


def network_imports(paths: list[Path]) -> list[str]:
    """``file: module`` for each import of a network module in ``paths``."""
    hits = []
    for path in paths:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if any(name == m or name.startswith(m + ".") or m in parts for m in NETWORK_MODULES):
                    hits.append(f"{path.name}: {name}")
                    break
    return hits


@offline_check("No update checks or network code in the app")
def no_network_code() -> tuple[bool, str]:
    paths = app_sources()
    server = [p for p in paths if p.parent.name == SERVER_PACKAGE]
    others = [p for p in paths if p.parent.name != SERVER_PACKAGE]
    hits = network_imports(others) + [h for h in network_imports(server) if not h.endswith(": socket")]
    if hits:
        return False, "; ".join(hits[:5])
    return True, (
        f"{len(paths)} app modules scanned: no update checks, no HTTP/socket clients, no QtNetwork; "
        "the local API server only listens, and only when started"
    )


@offline_check("Telemetry switched off (onnxruntime, genai, Hugging Face)")
def telemetry_off() -> tuple[bool, str]:
    """What stops telemetry, said as it is: the native switch decides; the Python-level
    ``disable_telemetry_events()`` is also called but alone does not stop the native
    client. Never imports onnxruntime itself (without the switch that import would start
    the client)."""
    native_off, native = native_telemetry_status()
    missing = [k for k, v in TELEMETRY_OFF_ENV.items() if os.environ.get(k) != v]
    for module in NATIVE_RUNTIME_MODULES:
        off = getattr(sys.modules.get(module), "disable_telemetry_events", None)
        if callable(off):
            off()
    hf = f"Hugging Face: {', '.join(TELEMETRY_OFF_ENV)} set" if not missing else f"not set: {', '.join(missing)}"
    return native_off and not missing, f"{native}; {hf}"


@offline_check("Fonts and icons are local")
def local_assets() -> tuple[bool, str]:
    ui = DESKTOP / "ui"
    remote = []
    for path in sorted(ui.rglob("*.py")) if ui.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in REMOTE_ASSET_MARKERS):
            remote.append(path.name)
    if remote:
        return False, f"remote assets referenced in {', '.join(remote)}"
    return True, "icons and styles load from resources/, fonts from the system; no web fonts or remote images"
