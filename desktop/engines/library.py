"""The user's model library: a folder of packs under the per-user data directory.

Qt-free so the CLI, tests and the app share it. ``ATELIER_HOME`` relocates everything
(tests and CI point it at a temporary folder so they never touch a real library).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import PackError, PackNotFoundError
from .packs import MANIFEST_NAME, Pack, load_pack, read_manifest

APP_NAME = "Atelier"


def data_dir() -> Path:
    override = os.environ.get("ATELIER_HOME")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_pack_name(name: str) -> str:
    """A folder name derived from a pack name: no separators, no dots at the start."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned[:80] or "pack"


@dataclass
class PackEntry:
    """What the library shows without hashing files: manifest facts and any problem."""

    name: str
    root: Path
    manifest: dict | None
    problem: str = ""


class Library:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else models_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def entries(self) -> list[PackEntry]:
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest = read_manifest(folder)
                out.append(PackEntry(manifest["name"], folder, manifest))
            except PackError as exc:
                out.append(PackEntry(folder.name, folder, None, str(exc)))
        return out

    def find(self, name_or_dir: str) -> Path:
        """A pack folder by library name, by folder name, or by a path to a pack folder."""
        candidate = Path(name_or_dir).expanduser()
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
        for entry in self.entries():
            if entry.manifest and name_or_dir in (entry.name, entry.root.name):
                return entry.root
        known = ", ".join(e.name for e in self.entries() if e.manifest) or "none installed"
        raise PackNotFoundError(f"No model named '{name_or_dir}' in the library ({known}).")

    def load(self, name_or_dir: str, verify_hashes: bool = True) -> Pack:
        return load_pack(self.find(name_or_dir), verify_hashes=verify_hashes)

    def first_of(self, modality: str) -> str | None:
        for entry in self.entries():
            if entry.manifest and entry.manifest.get("modality") == modality:
                return entry.name
        return None

    def destination(self, name: str) -> Path:
        return self.root / safe_pack_name(name)

    def remove(self, name_or_dir: str) -> Path:
        folder = self.find(name_or_dir).resolve()
        if self.root.resolve() not in folder.parents:
            raise PackError(f"'{folder}' is not inside the library; refusing to delete it.")
        shutil.rmtree(folder)
        return folder
