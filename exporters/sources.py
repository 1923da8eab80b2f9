"""What every modality's source loading shares: offline mode for local sources, short errors, the README card.

A local source switches the Hugging Face libraries to offline mode first (and the
subprocesses we start inherit it), so an export of a file on disk can never reach the network.
"""

from __future__ import annotations

import os
from pathlib import Path


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


def readme_card(folder: Path) -> tuple[str, str]:
    """A source folder's README.md (capped at 20,000 characters) and the licence named in its
    front matter ("license: ..." in the first 30 lines), each "" when absent."""
    readme = folder / "README.md"
    card = readme.read_text(encoding="utf-8", errors="replace")[:20000] if readme.is_file() else ""
    licence = ""
    for line in card.splitlines()[:30]:
        if line.lower().startswith("license:"):
            licence = line.split(":", 1)[1].strip()
    return card, licence
