"""Checks run on a pack just before an engine loads it (``base.open_engine``).

``load_pack`` has already confined every manifest path to the pack and verified sizes
and hashes. Here we look inside the files a runtime will open:
* every ``.onnx`` file gets a structural check (:mod:`.onnx_check`): well-formed,
  external data confined to listed files, plausible tensor sizes;
* ``genai_config.json`` (read by onnxruntime-genai itself) holds only allowlisted keys
  (:mod:`.runtime_config`: no native libraries, no profiling or log files) and may only
  name files that the manifest lists, inside the pack; no other listed JSON carries such
  a hook;
* the estimated memory must fit in what is available (:mod:`.memory`).
"""

from __future__ import annotations

from pathlib import Path

from desktop.engines.errors import PackFormatError, UnsafePathError
from desktop.engines.memory import check_pack_fits
from desktop.engines.packs.onnx_check import check_onnx_file
from desktop.engines.packs.pack import Pack, confined_path
from desktop.engines.text.runtime_config import DATA_JSON, check_genai_config, check_hook_keys

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
    """A pack's runtime configs are data: genai_config.json holds only allowlisted keys
    and names only listed files; no listed JSON carries a code or file hook."""
    listed = listed_paths(pack)
    for f in pack.files:
        if not f.path.lower().endswith(".json") or Path(f.path).name in DATA_JSON:
            continue
        if f.bytes > MAX_CONFIG_BYTES:
            if Path(f.path).name in RUNTIME_CONFIGS:
                raise PackFormatError(f"'{f.path}' in pack '{pack.name}' is implausibly large.")
            continue
        check_hook_keys(pack.read_json(f.path), pack.name, f.path)
    for name in RUNTIME_CONFIGS:
        if not pack.has_file(name):
            pack.path_of(name)  # a runtime config lying unlisted in the folder is refused
            continue
        data = pack.read_json(name)
        check_genai_config(data, pack.name, name)
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
