"""Offline by construction, and checkable.

Atelier never needs the network. Three parts make that verifiable:

* :mod:`.telemetry_switch` turns off the telemetry of the libraries we embed. onnxruntime's
  native client obeys only ``ORT_DISABLE_TELEMETRY`` in the environment before the library
  loads, so ``main.py`` imports that module first (it and this package import nothing
  heavy), as do the bundle's runtime hook and importing ``desktop``.
* :mod:`.guard` refuses internet sockets and name lookups from Python and records every
  attempt; the app and the CLI install it at start, tests use it to count attempts.
* :mod:`.checks` is the one registry behind the Settings page's "Offline" status; the app's
  own checks are in :mod:`.app_checks`, the export side registers its own.
"""

from desktop.offline.guard import (
    ALLOW_ENV,
    NetworkBlockedError,
    NetworkGuard,
    install_runtime_guard,
    listening_socket,
    runtime_guard,
)
from desktop.offline.telemetry_switch import apply_offline_defaults, disable_runtime_telemetry

__all__ = [
    "ALLOW_ENV",
    "NetworkBlockedError",
    "NetworkGuard",
    "apply_offline_defaults",
    "disable_runtime_telemetry",
    "install_runtime_guard",
    "listening_socket",
    "runtime_guard",
]
