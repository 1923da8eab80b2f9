"""Offline by construction, and checkable: a network guard and the "Offline" status.

Atelier never needs the network. Three layers make that verifiable:

* :class:`NetworkGuard` wraps Python's socket layer (``socket.socket``, ``getaddrinfo``,
  ``create_connection``, ``gethostbyname``) and records - and by default refuses - every
  attempt to open an internet socket. AF_UNIX sockets stay allowed: they never leave
  the machine (Qt, D-Bus and multiprocessing use them). The app and the CLI install it
  at start (:func:`install_runtime_guard`); tests use it to assert zero attempts, and it
  can follow child processes through a ``sitecustomize`` on ``PYTHONPATH``.
* Telemetry switches of the libraries we embed are turned off at start
  (:func:`apply_offline_defaults`). onnxruntime's and onnxruntime-genai's Linux wheels
  carry a native telemetry client (1DS) that writes ``~/.cache/Microsoft/DeveloperTools``
  and resolves ``mobile.events.data.microsoft.com`` from a native thread the Python guard
  cannot see; ``disable_telemetry_events()`` does not stop it, ``ORT_DISABLE_TELEMETRY=1``
  in the environment *before the libraries load* does (measured under ``strace -f``):
  ``main.py`` sets it first (:func:`desktop.telemetry_switch.switch_off_native_telemetry`),
  as do the bundle's runtime hook and importing ``desktop``; child processes inherit it.
* :func:`offline_report` lists what was checked, for the Settings page's "Offline"
  status. Qt-free: the Settings page renders the returned checks.

Native code (onnxruntime, tokenizers) does not go through Python's socket module; the
CI tests that run every CLI job inside ``unshare -n`` and a long window job under
``strace -f`` (tests/desktop/test_offline_telemetry.py) cover it.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from desktop.telemetry_switch import NATIVE_RUNTIME_MODULES, NATIVE_TELEMETRY_ENV, native_telemetry_status, switch_off_native_telemetry  # noqa: F401 - main.py's entry

ALLOW_ENV = "ATELIER_ALLOW_NETWORK"  # "1" lets a user opt in, e.g. to export from a hub id
CHILD_LOG_ENV = "ATELIER_NET_GUARD_LOG"  # where guarded child processes append attempts
CHILD_MODE_ENV = "ATELIER_NET_GUARD_MODE"

# Telemetry / phone-home switches of libraries that may run inside Atelier. Set (only
# when the user has not chosen otherwise) at start of the app and the CLI.
TELEMETRY_OFF_ENV = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}
# Hugging Face offline switches; the export path sets them when the source is local.
HF_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

# Modules whose import in app code would mean a network code path (update checks, fetches).
NETWORK_MODULES = ("socket", "urllib.request", "http.client", "requests", "httpx", "aiohttp", "urllib3", "ftplib", "smtplib", "xmlrpc", "QtNetwork", "QtWebEngineCore", "websocket")


class NetworkBlockedError(OSError):
    """Raised inside a library that tried to reach the network while Atelier is offline."""


@dataclass(frozen=True)
class NetworkAttempt:
    what: str  # "socket(AF_INET)", "getaddrinfo('example.com')", ...
    where: str  # the innermost frames of the caller, to find the culprit


class NetworkGuard:
    """Intercept Python-level socket creation and name lookups.

    ``block=True`` raises :class:`NetworkBlockedError` at the attempt; ``block=False``
    only records it. Use as a context manager or ``install()``/``uninstall()``.
    ``follow_children=True`` also guards Python child processes started while active.
    """

    def __init__(self, block: bool = True, follow_children: bool = False):
        self.block = block
        self.follow_children = follow_children
        self.attempts: list[NetworkAttempt] = []
        self._lock = threading.Lock()
        self._saved: dict[str, object] = {}
        self._child_dir: tempfile.TemporaryDirectory | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- recording ---------------------------------------------------------------------
    def _attempt(self, what: str) -> None:
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(traceback.extract_stack(limit=8)[:-2]))
        with self._lock:
            self.attempts.append(NetworkAttempt(what, where))
        if self.block:
            raise NetworkBlockedError(f"Atelier works offline: blocked {what}. Set {ALLOW_ENV}=1 to allow network access.")

    def child_attempts(self) -> list[NetworkAttempt]:
        """Attempts recorded by guarded child processes (one line each in the log)."""
        log = self._child_log()
        if log is None or not log.is_file():
            return []
        return [NetworkAttempt(*(line.split("\t", 1) + [""])[:2]) for line in log.read_text(encoding="utf-8").splitlines() if line]

    def all_attempts(self) -> list[NetworkAttempt]:
        return list(self.attempts) + self.child_attempts()

    def _child_log(self) -> Path | None:
        return Path(self._child_dir.name) / "attempts.log" if self._child_dir else None

    # -- patching ----------------------------------------------------------------------
    def install(self) -> "NetworkGuard":
        if self._saved:
            return self
        guard = self
        original_socket = socket.socket

        class GuardedSocket(original_socket):  # a subclass keeps isinstance() checks working
            def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
                super().__init__(family, type, proto, fileno)
                fam = self.family
                if fileno is not None and _accepted_by_listener(self):
                    return  # a connection a local API server listener accepted: inbound, allowed
                if fam not in _LOCAL_FAMILIES and not getattr(_IN_SOCKETPAIR, "active", False):
                    self.close()
                    guard._attempt(f"socket({getattr(fam, 'name', fam)})")

        def guarded_getaddrinfo(host, *args, **kwargs):
            if not _is_local_name(host):
                guard._attempt(f"getaddrinfo({host!r})")
            return self._saved["getaddrinfo"](host, *args, **kwargs)

        def guarded_gethostbyname(host):
            if not _is_local_name(host):
                guard._attempt(f"gethostbyname({host!r})")
            return self._saved["gethostbyname"](host)

        def guarded_gethostbyname_ex(host):
            if not _is_local_name(host):
                guard._attempt(f"gethostbyname_ex({host!r})")
            return self._saved["gethostbyname_ex"](host)

        def guarded_create_connection(address, *args, **kwargs):
            guard._attempt(f"create_connection({address!r})")
            return self._saved["create_connection"](address, *args, **kwargs)

        original_socketpair = socket.socketpair

        def guarded_socketpair(*args, **kwargs):
            # On Windows socketpair() is a loopback AF_INET pair made in Python; it never
            # leaves the machine, so creation inside it is not an attempt.
            _IN_SOCKETPAIR.active = True
            try:
                return original_socketpair(*args, **kwargs)
            finally:
                _IN_SOCKETPAIR.active = False

        self._saved = {
            "socket": original_socket,
            "socketpair": original_socketpair,
            "getaddrinfo": socket.getaddrinfo,
            "gethostbyname": socket.gethostbyname,
            "gethostbyname_ex": socket.gethostbyname_ex,
            "create_connection": socket.create_connection,
        }
        socket.socket = GuardedSocket
        socket.getaddrinfo = guarded_getaddrinfo
        socket.gethostbyname = guarded_gethostbyname
        socket.gethostbyname_ex = guarded_gethostbyname_ex
        socket.create_connection = guarded_create_connection
        socket.socketpair = guarded_socketpair
        if self.follow_children:
            self._install_child_hook()
        return self

    def uninstall(self) -> None:
        for name, value in self._saved.items():
            setattr(socket, name, value)
        self._saved = {}
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _install_child_hook(self) -> None:
        """Put a sitecustomize on PYTHONPATH so Python children install the guard too."""
        self._child_dir = tempfile.TemporaryDirectory(prefix="atelier-netguard-")
        folder = Path(self._child_dir.name)
        repo = Path(__file__).resolve().parent.parent
        (folder / "sitecustomize.py").write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(repo)!r})\n"
            "from desktop.offline import _child_guard\n"
            "_child_guard()\n",
            encoding="utf-8",
        )
        for key, value in {
            "PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p),
            CHILD_LOG_ENV: str(self._child_log()),
            CHILD_MODE_ENV: "block" if self.block else "record",
        }.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> "NetworkGuard":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def close(self) -> None:
        self.uninstall()
        if self._child_dir is not None:
            self._child_dir.cleanup()
            self._child_dir = None


_LOCAL_FAMILIES = {getattr(socket, "AF_UNIX", None)} - {None}
_IN_SOCKETPAIR = threading.local()


_LISTENER_PORTS: set[int] = set()
_LISTENING_ON: list[str] = []  # "host:port" of each local API server listener, for the status line
_UNGUARDED_SOCKET = socket.socket  # captured at import, before any guard replaces it


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket for the local API server (``python main.py serve``).

    Serving is inbound only, so the guard allows it: the socket is made with the unguarded
    class, and the connections it accepts (whose local port is this listener's) pass
    through. Every outbound socket stays refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _UNGUARDED_SOCKET(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    _LISTENER_PORTS.add(sock.getsockname()[1])
    _LISTENING_ON.append(f"{host}:{sock.getsockname()[1]}")
    return sock


def _accepted_by_listener(sock) -> bool:
    try:
        return sock.getsockname()[1] in _LISTENER_PORTS
    except (OSError, IndexError, TypeError):
        return False


def _is_local_name(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host is None or host in ("", "localhost", "127.0.0.1", "::1") or (isinstance(host, str) and host.startswith("/"))


class _ChildRecorder(NetworkGuard):
    """The guard inside a child process: appends each attempt to the parent's log."""

    def _attempt(self, what: str) -> None:
        log = os.environ.get(CHILD_LOG_ENV)
        if log:
            try:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{what} [pid {os.getpid()}]\t{sys.argv[:2]}\n")
            except OSError:
                pass
        super()._attempt(what)


def _child_guard() -> None:
    _ChildRecorder(block=os.environ.get(CHILD_MODE_ENV, "block") == "block").install()


# -- process-wide set-up ------------------------------------------------------------------
_RUNTIME_GUARD: NetworkGuard | None = None


def apply_offline_defaults(runtime: bool = True) -> None:
    """Telemetry off for every library we embed (the user's explicit choice wins).
    ``runtime=False`` leaves onnxruntime's own switch to :func:`disable_runtime_telemetry`
    at the first model load: importing onnxruntime costs ~0.3 s of the window's start."""
    for key, value in TELEMETRY_OFF_ENV.items():
        os.environ.setdefault(key, value)
    # for code that reaches here without main.py (scripts, tests): before the import below
    os.environ.setdefault(NATIVE_TELEMETRY_ENV, "1")
    if runtime:
        _disable_runtime_telemetry()


def disable_runtime_telemetry() -> dict[str, str]:
    """onnxruntime / onnxruntime-genai telemetry off; the window's engine loader calls
    this before it creates the first session (desktop/ui/engine_slot.py)."""
    return _disable_runtime_telemetry()


def _disable_runtime_telemetry() -> dict[str, str]:
    """The Python-level switch of onnxruntime / onnxruntime-genai. Alone it does NOT stop
    their native 1DS client (files and DNS lookups still happen): the environment switch
    (:func:`switch_off_native_telemetry`) does; this is kept as a second layer."""
    status = {}
    for module in ("onnxruntime", "onnxruntime_genai"):
        try:
            mod = __import__(module)
        except ImportError:
            status[module] = "not installed"
            continue
        off = getattr(mod, "disable_telemetry_events", None)
        if callable(off):
            off()
            status[module] = "disabled"
        else:
            status[module] = "has no telemetry switch"
    return status


def install_runtime_guard(runtime_telemetry: bool = True) -> NetworkGuard | None:
    """Called once at start by the app and the CLI: telemetry off, internet sockets
    refused. ``ATELIER_ALLOW_NETWORK=1`` opts out (e.g. to export from a hub id).
    The window passes ``runtime_telemetry=False`` (see apply_offline_defaults)."""
    global _RUNTIME_GUARD
    apply_offline_defaults(runtime=runtime_telemetry)
    if os.environ.get(ALLOW_ENV) == "1":
        return None
    if _RUNTIME_GUARD is None:
        _RUNTIME_GUARD = NetworkGuard(block=True).install()
    return _RUNTIME_GUARD


def runtime_guard() -> NetworkGuard | None:
    return _RUNTIME_GUARD


# -- the Settings page's "Offline" status ------------------------------------------------
@dataclass(frozen=True)
class OfflineCheck:
    title: str
    ok: bool
    detail: str


@dataclass
class OfflineReport:
    checks: list[OfflineCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def summary(self) -> str:
        bad = [c.title for c in self.checks if not c.ok]
        return "Offline: verified" if not bad else "Offline: check " + ", ".join(bad)

    def lines(self) -> list[str]:
        return [f"{'✓' if c.ok else '✗'} {c.title}: {c.detail}" for c in self.checks]


def offline_report() -> OfflineReport:
    """What Atelier checked to claim it is offline. The Settings page shows this
    (``report.summary()`` as the status line, ``report.lines()`` or ``report.checks``
    as the details). Cheap: a scan of our own sources and a look at switches."""
    return OfflineReport([_check_guard(), _check_sources(), _check_telemetry(), _check_hf_switches(), _check_assets()])


def _check_guard() -> OfflineCheck:
    guard = _RUNTIME_GUARD
    if guard is None:
        if os.environ.get(ALLOW_ENV) == "1":
            return OfflineCheck("Network guard", False, f"off: {ALLOW_ENV}=1 allows network access")
        return OfflineCheck("Network guard", False, "not installed in this process")
    n = len(guard.attempts)
    if n:
        return OfflineCheck("Network guard", False, f"blocked {n} connection attempt(s), last: {guard.attempts[-1].what} at {guard.attempts[-1].where}")
    listening = f"; the local API server listens on {', '.join(_LISTENING_ON)} (inbound only)" if _LISTENING_ON else ""
    return OfflineCheck("Network guard", True, f"internet sockets are refused; 0 attempts since start{listening}")


def app_sources() -> list[Path]:
    root = Path(__file__).resolve().parent
    return sorted(p for p in root.rglob("*.py") if p.name != "offline.py")


def network_imports(paths: list[Path]) -> list[str]:
    """``file: module`` for each import of a network module in ``paths``."""
    import ast

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


# The local API server binds a listening socket (and only that: offline.listening_socket),
# so its package may import ``socket``; every other network module stays banned there too.
SERVER_PACKAGE = "server"


def _check_sources() -> OfflineCheck:
    paths = app_sources()
    server = [p for p in paths if p.parent.name == SERVER_PACKAGE]
    others = [p for p in paths if p.parent.name != SERVER_PACKAGE]
    hits = network_imports(others) + [h for h in network_imports(server) if not h.endswith(": socket")]
    if hits:
        return OfflineCheck("No network code", False, "; ".join(hits[:5]))
    return OfflineCheck(
        "No network code",
        True,
        f"{len(paths)} app modules scanned: no update checks, no HTTP/socket clients, no QtNetwork; "
        "the local API server only listens, and only when started",
    )


def _check_telemetry() -> OfflineCheck:
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
    return OfflineCheck("Telemetry off", native_off and not missing, f"{native}; {hf}")


def _check_hf_switches() -> OfflineCheck:
    """The export path must switch Hugging Face to offline mode for local sources."""
    try:
        from exporters.text_source import force_offline
    except ImportError:
        return OfflineCheck("Offline exports", True, "the export extra is not installed: nothing here can reach a model hub")
    touched = (*HF_OFFLINE_ENV, "HF_HUB_DISABLE_TELEMETRY")
    saved = {k: os.environ.get(k) for k in touched}
    try:
        force_offline()
        unset = [k for k, v in HF_OFFLINE_ENV.items() if os.environ.get(k) != v]
    finally:  # the check must not change this process's environment
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if unset:
        return OfflineCheck("Offline exports", False, f"local exports leave {', '.join(unset)} unset")
    return OfflineCheck("Offline exports", True, f"exports of local files set {', '.join(HF_OFFLINE_ENV)}=1")


REMOTE_ASSET_MARKERS = ("QNetworkAccessManager", "QWebEngine", "url(http", 'QUrl("http', "QUrl('http", 'QIcon("http', "QIcon('http")


def _check_assets() -> OfflineCheck:
    ui = Path(__file__).resolve().parent / "ui"
    remote = []
    for path in sorted(ui.rglob("*.py")) if ui.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in REMOTE_ASSET_MARKERS):
            remote.append(path.name)
    if remote:
        return OfflineCheck("Local fonts and icons", False, f"remote assets referenced in {', '.join(remote)}")
    return OfflineCheck("Local fonts and icons", True, "icons and styles load from resources/, fonts from the system; no web fonts or remote images")
