"""Issue 5's checks for the Settings page's "Offline" status.

Imported lazily by :mod:`desktop.offline_checks` (listed in its ``CHECK_MODULES``); each
check of :func:`desktop.offline.offline_report` becomes one named row there.
"""

from __future__ import annotations

from desktop import offline
from desktop.offline_checks import offline_check


def _register(name: str, check) -> None:
    def run() -> tuple[bool, str]:
        result = check()
        return result.ok, result.detail

    offline_check(name)(run)


_register("Network guard refuses internet sockets", offline._check_guard)
_register("No update checks or network code in the app", offline._check_sources)
_register("Telemetry switched off (onnxruntime, genai, Hugging Face)", offline._check_telemetry)
_register("Exports of local files run with Hugging Face offline", offline._check_hf_switches)
_register("Fonts and icons are local", offline._check_assets)
