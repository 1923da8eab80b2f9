"""Models that ship with the app: nothing is ever downloaded.

A built bundle carries the default packs (text, voice, image) in ``packs/`` beside the
code; a source checkout carries our own small image packs in ``resources/models/``. Both
are found relative to this file, which PyInstaller keeps at the same place inside the
bundle. ``ATELIER_BUNDLED_PACKS`` (folders separated by os.pathsep) replaces the list -
tests use it. The welcome screen offers to add the ones not yet in the library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from desktop.engines.errors import PackError
from desktop.engines.events import Progress
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import MANIFEST_NAME, read_manifest

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_PACKS = ROOT / "packs"  # only present in a built bundle
SOURCE_PACKS = ROOT / "resources" / "models"


def bundled_roots() -> list[Path]:
    override = os.environ.get("ATELIER_BUNDLED_PACKS")
    if override is not None:
        return [Path(p) for p in override.split(os.pathsep) if p]
    return [BUNDLE_PACKS, SOURCE_PACKS]


def bundled_packs() -> list[tuple[Path, dict]]:
    """(folder, manifest) of every readable pack shipped with the app."""
    found = []
    for root in bundled_roots():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / MANIFEST_NAME).is_file()):
            try:
                found.append((folder, read_manifest(folder)))
            except PackError:
                continue  # a broken bundled pack is reported by the self-test, not here
    return found


def not_installed(library: Library) -> list[tuple[Path, dict]]:
    installed = {e.name for e in library.entries() if e.manifest}
    return [(folder, m) for folder, m in bundled_packs() if m["name"] not in installed]


def install(library: Library, packs: list[tuple[Path, dict]]) -> Iterator:
    """Copy (and verify) bundled packs into the library; yields Progress, then each Pack.
    Cancelling stops before the next pack."""
    from desktop.engines.packs.importers import import_path

    for i, (folder, manifest) in enumerate(packs):
        yield Progress(f"Adding {manifest['name']} ({i + 1} of {len(packs)})…", i / max(len(packs), 1))
        yield import_path(folder, library)
    yield Progress("Bundled models added", 1.0)


def packs_to_bundle(library: Library) -> list[Path]:
    """Default packs installed in ``library`` that a built bundle carries under packs/
    (our image packs travel in resources/models/ already)."""
    from desktop import defaults

    return [e.root for e in library.entries() if e.manifest and e.name in defaults.DEFAULT_PACKS]


if __name__ == "__main__":  # used by scripts/build-app: one folder per line
    for folder in packs_to_bundle(Library()):
        print(folder)
