"""The API key the Settings panel's server asks for: generated on first use, kept in the
user's config folder, readable by its owner only.

The file is written atomically (temp file created exclusively, then renamed) and made
0600 before a byte of the key is in it, so neither a crash nor another local user ever
sees a half-written or readable key. Regenerating replaces it the same way.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from desktop.engines.atomic_write import write_atomic

FILE_NAME = "api_key"
KEY_PREFIX = "atelier-"


def key_path() -> Path:
    home = os.environ.get("ATELIER_HOME")
    if home:  # tests and portable installs keep everything beside their library
        folder = Path(home)
    else:
        from platformdirs import user_config_dir

        folder = Path(user_config_dir("Atelier", appauthor=False))
    return folder / FILE_NAME


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def read_key() -> str | None:
    """The stored key, or None when none was made yet (or the file is unusable)."""
    try:
        key = key_path().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key or None


def write_key(key: str) -> str:
    path = key_path()
    path.parent.mkdir(parents=True, exist_ok=True)

    def fill(fh) -> None:
        if hasattr(os, "fchmod"):
            os.fchmod(fh.fileno(), 0o600)  # owner-only before the secret is written
        fh.write(key.encode("utf-8") + b"\n")

    write_atomic(path, fill, overwrite=True)
    return key


def load_or_create_key() -> str:
    return read_key() or write_key(new_key())


def regenerate_key() -> str:
    return write_key(new_key())
