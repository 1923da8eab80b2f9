"""What every modality's source loading shares: offline mode for local sources, short errors.

A local source switches the Hugging Face libraries to offline mode first (and the
subprocesses we start inherit it), so an export of a file on disk can never reach the network.
"""

from __future__ import annotations

import os


def force_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def offline_env() -> dict[str, str]:
    """This process's environment with the Hugging Face libraries offline, for a subprocess."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def short_error(exc: Exception) -> str:
    """The first line of a library's exception, enough for a one-line message."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
