"""The network guard: internet sockets and name lookups refused, every attempt recorded.

:class:`NetworkGuard` wraps Python's socket layer (``socket.socket``, ``getaddrinfo``,
``create_connection``, ``gethostbyname``) and records - and by default refuses - every
attempt to open an internet socket. AF_UNIX sockets stay allowed: they never leave the
machine (Qt, D-Bus and multiprocessing use them). The app and the CLI install it at start
(:func:`install_runtime_guard`); tests use it to assert zero attempts, and it can follow
child processes through a ``sitecustomize`` on ``PYTHONPATH``. The local API server's
listener (:func:`listening_socket`) is the one inbound exception.

Native code (onnxruntime, tokenizers) does not go through Python's socket module: the
environment switch in :mod:`desktop.offline.telemetry_switch` and the CI tests that run
jobs inside ``unshare -n`` and under ``strace -f`` cover it.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from desktop.offline.telemetry_switch import apply_offline_defaults

ALLOW_ENV = "ATELIER_ALLOW_NETWORK"  # "1" lets a user opt in, e.g. to export from a hub id
CHILD_LOG_ENV = "ATELIER_NET_GUARD_LOG"  # where guarded child processes append attempts
CHILD_MODE_ENV = "ATELIER_NET_GUARD_MODE"


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
        repo = Path(__file__).resolve().parents[2]
        (folder / "sitecustomize.py").write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(repo)!r})\n"
            "from desktop.offline.guard import _child_guard\n"
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
    """The guard :func:`install_runtime_guard` installed in this process, if any."""
    return _RUNTIME_GUARD


def listening_on() -> list[str]:
    """``host:port`` of each local API server listener opened in this process."""
    return list(_LISTENING_ON)
