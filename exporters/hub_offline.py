"""The export side's check for the Settings page's "Offline" status.

Exports of files on disk must switch the Hugging Face libraries to offline mode first
(``exporters.sources.force_offline``), so an export can never reach a model hub. The check lives
here, next to the code it verifies; the app's check registry imports this module by name
(desktop/offline/checks.py) and skips it where exporters is not installed.
"""

from __future__ import annotations

import os

from desktop.offline.checks import offline_check

from .sources import force_offline

# Hugging Face's offline switches, which an export of a local source must set.
HF_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@offline_check("Exports of local files run with Hugging Face offline")
def local_exports_are_offline() -> tuple[bool, str]:
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
        return False, f"local exports leave {', '.join(unset)} unset"
    return True, f"exports of local files set {', '.join(HF_OFFLINE_ENV)}=1"
