"""The user's model library: a folder of packs under the per-user data directory.

Qt-free so the CLI, tests and the app share it. ``ATELIER_HOME`` relocates everything
(tests and CI point it at a temporary folder so they never touch a real library).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from desktop.engines.errors import PackError, PackFormatError, PackNotFoundError, RequestError
from desktop.engines.packs.names import name_skeleton
from desktop.engines.packs.pack import MANIFEST_NAME, Pack, check_complete, load_pack, read_manifest
from desktop.engines.staging import clean_leftovers

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
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:80]
    if not name.isascii():  # letters dropped: a short hash keeps distinct names in distinct folders
        cleaned = f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:8]}".strip("-")
    return cleaned or "pack"


def _a(word: object) -> str:
    word = str(word)
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


@dataclass
class PackEntry:
    """What the library shows without hashing files: manifest facts and any problem.
    ``manifest`` is None for a broken pack (then ``name`` is its folder name)."""

    name: str
    root: Path
    manifest: dict | None
    problem: str = ""

    @property
    def pack_hash(self) -> str:
        """The pack hash the manifest promises (what provenance records name)."""
        h = hashlib.sha256()
        for f in sorted((self.manifest or {}).get("files", []), key=lambda f: f["path"]):
            h.update(f"{f['path']}\0{f['sha256']}\n".encode())
        return h.hexdigest()


class Library:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else models_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.root)

    def entries(self) -> list[PackEntry]:
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest = read_manifest(folder)
                check_complete(folder, manifest)
                out.append(PackEntry(manifest["name"], folder, manifest))
            except PackError as exc:
                out.append(PackEntry(folder.name, folder, None, str(exc)))
        return out

    def entry(self, name: str) -> PackEntry:
        """The healthy pack called exactly ``name``. No folder names, no normalising:
        a look-alike name never stands in for the real one."""
        entries = self.entries()
        for entry in entries:
            if entry.manifest and entry.name == name:
                return entry
        broken = next((e for e in entries if not e.manifest and e.name == name), None)
        if broken is not None:
            raise PackFormatError(f"The model folder '{name}' is broken: {broken.problem} Remove it with `models remove {name}`.")
        known = ", ".join(e.name for e in entries if e.manifest) or "none installed"
        raise PackNotFoundError(f"No model named '{name}' in the library ({known}).")

    def find(self, name: str, allow_path: bool = False) -> Path:
        """A pack folder by exact library name. ``allow_path`` (only for a folder the user
        typed, never for a name read from a file) also accepts a path to a pack folder."""
        try:
            return self.entry(name).root
        except PackNotFoundError:
            candidate = Path(name).expanduser()
            if allow_path and (candidate / MANIFEST_NAME).is_file():
                return candidate
            raise

    def find_by_hash(self, pack_hash: str) -> PackEntry | None:
        return next((e for e in self.entries() if e.manifest and e.pack_hash == pack_hash), None)

    def load(self, name: str, verify_hashes: bool = True, modality: str | None = None, allow_path: bool = False) -> Pack:
        """Load a pack by exact name; with ``modality`` a pack of another kind is refused
        by name before anything is hashed or loaded."""
        root = self.find(name, allow_path=allow_path)
        if modality is not None:
            found = read_manifest(root).get("modality")
            if found != modality:
                raise RequestError(f"'{name}' is {_a(found)} model; this needs {_a(modality)} model. Choose {_a(modality)} pack (see `models list`).")
        return load_pack(root, verify_hashes=verify_hashes)

    def first_of(self, modality: str) -> str | None:
        for entry in self.entries():
            if entry.manifest and entry.manifest.get("modality") == modality:
                return entry.name
        return None

    def destination(self, name: str) -> Path:
        return self.root / safe_pack_name(name)

    def name_clash(self, name: str) -> str | None:
        """The installed pack whose name ``name`` repeats or only looks like, if any."""
        skeleton = name_skeleton(name)
        for entry in self.entries():
            if entry.manifest and (entry.name == name or name_skeleton(entry.name) == skeleton):
                return entry.name
        return None

    def remove(self, name_or_folder: str) -> Path:
        """Delete a pack by exact name, or a broken pack by its folder (a folder of this
        library, named or given as a path)."""
        folder = None
        for entry in self.entries():
            if (entry.manifest and entry.name == name_or_folder) or str(entry.root) == name_or_folder or (not entry.manifest and entry.name == name_or_folder):
                folder = entry.root.resolve()
                break
        if folder is None:
            self.entry(name_or_folder)  # raises "no model named ..."
        if self.root.resolve() not in folder.parents:
            raise PackError(f"'{folder}' is not inside the library; refusing to delete it.")
        shutil.rmtree(folder)
        return folder
