"""Telemetry off: the switches of every library Atelier embeds, set at start.

The one that matters most is onnxruntime's native telemetry, a switch that must be in the
environment before the library loads.

onnxruntime's and onnxruntime-genai's Linux wheels carry a native 1DS telemetry client. On
every job it writes ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` (a device id and a
SQLite event store; ``$XDG_CACHE_HOME`` moves it) and, in jobs past ~20 s, resolves
``mobile.events.data.microsoft.com`` from a native thread that Python's socket guard never
sees. ``onnxruntime.disable_telemetry_events()`` does not stop it. Both libraries read
``ORT_DISABLE_TELEMETRY`` with ``getenv``; measured under ``strace -f`` with a fresh HOME
(a 40 s Piper speech job): without it 20 inet/netlink sockets, 8 connects to port 53 and
both files; with it set in-process before the import, or before start, none of these.

Qt-free and import-free (no onnxruntime here, nor in ``desktop.offline``'s ``__init__``),
so ``main.py`` can call it first.
"""

from __future__ import annotations

import os
import sys

# -- native telemetry: a switch that must be in the environment before the libraries load --
NATIVE_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"  # read by onnxruntime's and onnxruntime-genai's native clients
NATIVE_RUNTIME_MODULES = ("onnxruntime", "onnxruntime_genai")
_REEXEC_MARK = "ATELIER_TELEMETRY_REEXEC"  # set on the re-executed process: never loop
# How the switch reached this process: "before start" (inherited), "at start" (Atelier set
# it before any runtime loaded), "user" (the user chose another value), "late" (a runtime
# was loaded before the switch and re-executing was impossible), None (not prepared:
# Atelier's modules used as a library, e.g. by tests).
_NATIVE_SWITCH: str | None = None

# Telemetry / phone-home switches of the Python libraries that may run inside Atelier. Set
# (only when the user has not chosen otherwise) at start of the app and the CLI.
TELEMETRY_OFF_ENV = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


def switch_off_native_telemetry(argv: list[str] | None = None, execv=os.execv) -> str:
    """Put ``ORT_DISABLE_TELEMETRY=1`` into this process's environment (and so every
    child's) before onnxruntime loads. Measured: setting it in-process before the import
    stops the native client as well as setting it before start does (0 inet/netlink
    sockets, no files, in a 40 s job); after the import it may be too late, so then the
    process re-executes itself with the switch set (one extra interpreter start).
    A value the user set explicitly is kept (the status then says telemetry is on)."""
    global _NATIVE_SWITCH
    value = os.environ.get(NATIVE_TELEMETRY_ENV)
    if value not in (None, "1"):
        _NATIVE_SWITCH = "user"
        return _NATIVE_SWITCH
    if value == "1" and _in_start_environment():
        _NATIVE_SWITCH = "before start"
        return _NATIVE_SWITCH
    os.environ[NATIVE_TELEMETRY_ENV] = "1"
    loaded = [m for m in NATIVE_RUNTIME_MODULES if m in sys.modules]
    if not loaded:
        _NATIVE_SWITCH = "at start"
        return _NATIVE_SWITCH
    if os.environ.get(_REEXEC_MARK) != "1":
        os.environ[_REEXEC_MARK] = "1"
        args = list(argv if argv is not None else _restart_argv())
        try:
            execv(args[0], args)  # does not return when it works
        except OSError:
            pass
    _NATIVE_SWITCH = "late"
    return _NATIVE_SWITCH


def _restart_argv() -> list[str]:
    if getattr(sys, "frozen", False):  # the PyInstaller bundle: the executable is the app
        return [sys.executable, *sys.argv[1:]]
    return [sys.executable, *sys.orig_argv[1:]]


def _in_start_environment() -> bool:
    """Whether the switch was in the environment the process started with (Linux reads
    /proc; elsewhere an inherited value cannot be told from one set at start)."""
    try:
        with open("/proc/self/environ", "rb") as fh:
            return f"{NATIVE_TELEMETRY_ENV}=1".encode() in fh.read().split(b"\0")
    except OSError:
        return False


def native_telemetry_status() -> tuple[bool, str]:
    """(off, one line saying how we know) for the Settings page's "Offline" status."""
    value = os.environ.get(NATIVE_TELEMETRY_ENV)
    loaded = [m for m in NATIVE_RUNTIME_MODULES if m in sys.modules]
    how = _NATIVE_SWITCH
    if value != "1":
        if how == "user" or value is not None:
            return False, f"onnxruntime telemetry: ON ({NATIVE_TELEMETRY_ENV}={value} was set by you; its native client writes ~/.cache/Microsoft and contacts Microsoft)"
        return False, f"onnxruntime telemetry: not switched off ({NATIVE_TELEMETRY_ENV} is not set in this process)"
    if how == "before start" or (how is None and _in_start_environment()):
        return True, f"onnxruntime and onnxruntime-genai telemetry: off ({NATIVE_TELEMETRY_ENV}=1 set before start)"
    if how == "at start":
        return True, f"onnxruntime and onnxruntime-genai telemetry: off ({NATIVE_TELEMETRY_ENV}=1 set by Atelier at start, before either library loaded)"
    if how == "late":
        return False, f"onnxruntime telemetry: uncertain ({NATIVE_TELEMETRY_ENV}=1 was set after onnxruntime loaded and the restart was refused)"
    if loaded:
        return False, f"onnxruntime telemetry: uncertain ({NATIVE_TELEMETRY_ENV}=1 is set, but this process did not start through Atelier and {', '.join(loaded)} may have loaded first)"
    return True, f"onnxruntime and onnxruntime-genai telemetry: off ({NATIVE_TELEMETRY_ENV}=1 set before either library loaded)"


def apply_offline_defaults(runtime: bool = True) -> None:
    """Telemetry off for every library we embed (the user's explicit choice wins).
    ``runtime=False`` leaves onnxruntime's own switch to :func:`disable_runtime_telemetry`
    at the first model load: importing onnxruntime costs ~0.3 s of the window's start."""
    for key, value in TELEMETRY_OFF_ENV.items():
        os.environ.setdefault(key, value)
    # for code that reaches here without main.py (scripts, tests): before the import below
    os.environ.setdefault(NATIVE_TELEMETRY_ENV, "1")
    if runtime:
        disable_runtime_telemetry()


def disable_runtime_telemetry() -> dict[str, str]:
    """The Python-level switch of onnxruntime / onnxruntime-genai; the window's engine loader
    calls this before it creates the first session (desktop/ui/engine_slot.py). Alone it
    does NOT stop their native 1DS client (files and DNS lookups still happen): the
    environment switch (:func:`switch_off_native_telemetry`) does; this is a second layer."""
    status = {}
    for module in NATIVE_RUNTIME_MODULES:
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
