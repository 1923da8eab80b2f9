"""Checks run on a pack just before an engine loads it (``base.open_engine``).

``load_pack`` has already confined every manifest path to the pack and verified sizes
and hashes. Here we look inside the files a runtime will open:
* every ``.onnx`` file gets a structural check (:mod:`.onnx_check`): well-formed,
  external data confined to listed files, plausible tensor sizes;
* ``genai_config.json`` (read by onnxruntime-genai itself) may only name files that the
  manifest lists, inside the pack;
* the estimated memory must fit in what is available (:mod:`.memory`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PackFormatError, UnsafePathError
from .memory import check_pack_fits
from .onnx_check import check_onnx_file
from .packs import Pack, confined_path

RUNTIME_CONFIGS = ("genai_config.json",)
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def listed_paths(pack: Pack) -> set[Path]:
    return {pack.path_of(f.path) for f in pack.files}


def check_graphs(pack: Pack) -> None:
    listed = listed_paths(pack)
    for f in pack.files:
        if f.path.lower().endswith(".onnx"):
            check_onnx_file(pack.path_of(f.path), pack.root, listed)


def _filenames(value, key: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _filenames(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _filenames(v, key)
    elif isinstance(value, str) and (key == "filename" or key.endswith("_filename") or key.endswith("_file")):
        yield value


def check_runtime_configs(pack: Pack) -> None:
    """Files that runtimes resolve by themselves must stay inside the pack."""
    listed = listed_paths(pack)
    for name in RUNTIME_CONFIGS:
        path = pack.root / name
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise PackFormatError(f"'{name}' in pack '{pack.name}' is implausibly large.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise PackFormatError(f"'{name}' in pack '{pack.name}' is not valid JSON.") from None
        for ref in _filenames(data):
            try:
                target = confined_path(pack.root, ref)
            except UnsafePathError:
                raise UnsafePathError(f"'{name}' in pack '{pack.name}' names '{ref}', outside the pack folder; refusing to load it.") from None
            if target not in listed:
                raise UnsafePathError(f"'{name}' in pack '{pack.name}' names '{ref}', which the manifest does not list.")


def preflight(pack: Pack) -> None:
    """Everything that must hold before a runtime session is created for ``pack``."""
    check_graphs(pack)
    check_runtime_configs(pack)
    check_pack_fits(pack)
