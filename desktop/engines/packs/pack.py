"""The pack format: the one contract between exporters and the desktop app.

A pack is a folder holding ``manifest.json`` and the files it lists. The manifest says
what the model is (modality, architecture, precision, IO names), where it came from
(provenance, licence) and how well the export matched its source (validation report).
Both sides import this module: exporters write manifests with :func:`write_manifest`,
the app reads them with :func:`load_pack`, which refuses anything it cannot trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.engines.errors import PackFormatError, PackIntegrityError, UnsafePathError
from desktop.engines.packs.names import check_pack_name

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "atelier-pack"
SCHEMA_VERSION = 1
MODALITIES = ("text", "image", "speech")
PRECISIONS = ("fp32", "fp16", "int8", "int4", "mixed")
# A manifest is a few KB; a bigger one is a hostile or broken file, not a pack.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Limits against hostile manifests (far above any real pack).
MAX_PACK_FILES = 10_000
MAX_FILE_BYTES = 256 * 1024**3
MAX_PACK_BYTES = 1024**4
MAX_NAME_CHARS = 200
MAX_PATH_CHARS = 1024
MAX_CONTEXT = 1 << 24

# field name -> (required, accepted types). Kept declarative so the schema is readable
# in one place and the validator stays a loop.
_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "format": (True, (str,)),
    "schema_version": (True, (int,)),
    "name": (True, (str,)),
    "modality": (True, (str,)),
    "architecture": (True, (str,)),
    "runtime": (True, (str,)),
    "precision": (True, (str,)),
    "files": (True, (list,)),
    "io": (False, (dict,)),
    "config": (False, (dict,)),
    "context_length": (False, (int, type(None))),
    "license": (False, (dict,)),
    "source": (False, (dict,)),
    "model_card": (False, (str,)),
    "validation": (False, (dict,)),
    "created": (False, (str,)),
    "exporter": (False, (str,)),
}


@dataclass
class PackFile:
    path: str
    sha256: str
    bytes: int
    role: str = ""


@dataclass
class Pack:
    """A loaded, schema-checked pack. ``root`` is the folder; paths are confined to it."""

    root: Path
    manifest: dict[str, Any]
    files: list[PackFile] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def modality(self) -> str:
        return self.manifest["modality"]

    @property
    def architecture(self) -> str:
        return self.manifest["architecture"]

    @property
    def runtime(self) -> str:
        return self.manifest["runtime"]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config") or {}

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def pack_hash(self) -> str:
        """One SHA-256 naming this exact pack: the hash of its sorted file hashes."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(f"{f.path}\0{f.sha256}\n".encode())
        return h.hexdigest()

    # -- the one way to reach a pack's files -------------------------------------------
    # A pack is data: only files its manifest lists (and therefore hashed) are ever read,
    # each a regular file inside the pack, never through a symbolic link. A file lying in
    # the folder without being listed is refused, not silently used.
    def listed(self, relative: str) -> PackFile | None:
        key = _path_key(relative)
        return next((f for f in self.files if _path_key(f.path) == key), None)

    def has_file(self, relative: str) -> bool:
        return self.listed(relative) is not None

    def path_of(self, relative: str) -> Path:
        """The path of a listed file (or of a folder holding only listed files) for a
        runtime to open. A path nothing lies at comes back as is, so optional files read
        as absent; anything present but unlisted, linked or irregular is refused."""
        target = confined_path(self.root, relative)
        entry = self.listed(relative)
        if entry is not None:
            return self._checked_file(entry)
        if not os.path.lexists(target) and not os.path.lexists(Path(self.root) / relative):
            return target
        if target.is_dir() and not Path(self.root, relative).is_symlink():
            strays = [p for p in stray_files(self.root, self.manifest) if p == relative.rstrip("/") or p.startswith(relative.rstrip("/") + "/")]
            if not strays:
                return target
            relative = strays[0]
        raise UnsafePathError(
            f"Pack '{self.name}' holds '{relative}', which its manifest does not list (or a link); "
            "only listed, hashed files are read. Run `models verify` and re-import the pack."
        )

    def read_bytes(self, relative: str) -> bytes:
        """A listed file's bytes, checked against its SHA-256 as they are read."""
        entry = self.listed(relative)
        if entry is None:
            self.path_of(relative)  # refuses a present but unlisted file by name
            raise PackFormatError(f"Pack '{self.name}' has no file '{relative}'.")
        path = self._checked_file(entry)
        if entry.bytes > MAX_MANIFEST_BYTES * 64:
            raise PackFormatError(f"'{relative}' in pack '{self.name}' is too large to read as a settings file.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise PackIntegrityError(f"Pack '{self.name}': file '{relative}' does not match its SHA-256; refusing to read it.")
        return data

    def read_json(self, relative: str, default: Any = None) -> Any:
        """A listed JSON file, or ``default`` when the pack has no such file."""
        if not self.has_file(relative):
            self.path_of(relative)
            return default
        try:
            return json.loads(self.read_bytes(relative).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise PackFormatError(f"'{relative}' in pack '{self.name}' is not valid JSON.") from None

    def _checked_file(self, entry: PackFile) -> Path:
        check_regular_file(self.root, entry.path, self.name)
        return confined_path(self.root, entry.path)

    def file_with_role(self, role: str) -> Path:
        for f in self.files:
            if f.role == role:
                return self.path_of(f.path)
        raise PackFormatError(f"Pack '{self.name}' has no file with role '{role}'.")

    def estimated_ram_bytes(self) -> int:
        """Rough resident size when loaded: weights plus runtime overhead."""
        declared = self.config.get("estimated_ram_bytes")
        if isinstance(declared, int) and declared > 0:
            return declared
        return int(self.size_bytes * 1.3) + 64 * 1024 * 1024


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def confined_path(root: Path, relative: str) -> Path:
    """Resolve ``relative`` inside ``root`` or raise: no absolute paths, no ``..`` escapes,
    no symlinks pointing out of the pack."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise UnsafePathError(f"Invalid file path {relative!r} in pack.")
    if os.path.isabs(relative) or relative.startswith(("/", "\\")) or ":" in relative[:3]:
        raise UnsafePathError(f"Pack file path '{relative}' is absolute; only paths inside the pack are allowed.")
    root_resolved = Path(root).resolve()
    target = (root_resolved / relative).resolve()
    if target != root_resolved and root_resolved not in target.parents:
        raise UnsafePathError(f"Pack file path '{relative}' points outside the pack folder.")
    return target


def _path_key(relative: str) -> str:
    return str(relative).replace("\\", "/").strip("/")


def check_regular_file(root: Path, relative: str, name: str) -> None:
    """Refuse a listed path that is a link (anywhere below the pack root) or not a file."""
    current = Path(root)
    parts = [p for p in _path_key(relative).split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            raise PackIntegrityError(f"Pack '{name}' is incomplete: file '{relative}' is missing. Re-import or re-export the pack.") from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(f"Pack '{name}': '{relative}' is reached through a symbolic link; packs may not contain links.")
        last = i == len(parts) - 1
        if last and not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"Pack '{name}': '{relative}' is not a regular file.")


def check_complete(root: Path, manifest: dict[str, Any]) -> None:
    """Cheap completeness check (no hashing): every listed file is present as a regular
    file of the listed size. What the library list uses to show a half pack as broken."""
    for entry in manifest["files"]:
        target = confined_path(root, entry["path"])
        check_regular_file(root, entry["path"], manifest["name"])
        size = target.stat().st_size
        if size != entry["bytes"]:
            raise PackIntegrityError(f"Pack '{manifest['name']}' is incomplete: file '{entry['path']}' is {size:,} bytes, the manifest says {entry['bytes']:,}.")


def stray_files(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Everything in a pack folder its manifest does not vouch for: unlisted files,
    links and special files (pipes, devices). Listed in folder order."""
    root = Path(root)
    listed = {_path_key(f.get("path", "")) for f in manifest.get("files", []) if isinstance(f, dict)}
    strays: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                strays.append((base / d).relative_to(root).as_posix())
                dirnames.remove(d)
        for f in filenames:
            rel = (base / f).relative_to(root).as_posix()
            if rel == MANIFEST_NAME:
                continue
            st = os.lstat(base / f)
            if rel not in listed or not stat.S_ISREG(st.st_mode):
                strays.append(rel)
        if len(strays) > 100:
            break
    return sorted(strays)


def _check_schema(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise PackFormatError(f"{where}: manifest is not a JSON object.")
    if manifest.get("format") != FORMAT_NAME:
        raise PackFormatError(f"{where}: not an Atelier pack manifest (format is {manifest.get('format')!r}).")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise PackFormatError(
            f"{where}: manifest schema version {version!r} is not supported by this app "
            f"(it reads version {SCHEMA_VERSION}). Re-export the pack or update Atelier."
        )
    for key, (required, types) in _FIELDS.items():
        if key not in manifest:
            if required:
                raise PackFormatError(f"{where}: manifest is missing the required field '{key}'.")
            continue
        if not isinstance(manifest[key], types) or isinstance(manifest[key], bool):
            raise PackFormatError(f"{where}: manifest field '{key}' has the wrong type.")
    if manifest["modality"] not in MODALITIES:
        raise PackFormatError(f"{where}: unknown modality '{manifest['modality']}' (known: {', '.join(MODALITIES)}).")
    if manifest["precision"] not in PRECISIONS:
        raise PackFormatError(f"{where}: unknown precision '{manifest['precision']}'.")
    if not manifest["files"]:
        raise PackFormatError(f"{where}: manifest lists no files.")
    if len(manifest["files"]) > MAX_PACK_FILES:
        raise PackFormatError(f"{where}: manifest lists {len(manifest['files']):,} files; a pack holds at most {MAX_PACK_FILES:,}.")
    seen: set[str] = set()
    total = 0
    for entry in manifest["files"]:
        if not isinstance(entry, dict):
            raise PackFormatError(f"{where}: a files entry is not an object.")
        if not isinstance(entry.get("path"), str) or not isinstance(entry.get("sha256"), str):
            raise PackFormatError(f"{where}: a files entry lacks 'path' or 'sha256'.")
        if len(entry["sha256"]) != 64 or any(c not in "0123456789abcdef" for c in entry["sha256"]):
            raise PackFormatError(f"{where}: file '{entry['path'][:200]}' has a malformed SHA-256.")
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PackFormatError(f"{where}: file '{entry['path'][:200]}' has no valid byte size.")
        _check_extras(entry, seen, where)
        total += size
    if total > MAX_PACK_BYTES:
        raise PackFormatError(f"{where}: the files add up to {total:,} bytes, beyond any model this app can load.")
    _check_bounds(manifest, where)


def _check_extras(entry: dict[str, Any], seen: set[str], where: Path) -> None:
    """Per-file limits, because a pack may be hostile: sizes, duplicates, roles."""
    path = entry["path"]
    if len(path) > MAX_PATH_CHARS:
        raise PackFormatError(f"{where}: a file path of {len(path):,} characters is not plausible.")
    if entry["bytes"] > MAX_FILE_BYTES:
        raise PackFormatError(f"{where}: file '{path[:200]}' claims {entry['bytes']:,} bytes, beyond any model file this app can load.")
    key = path.replace("\\", "/").lower()
    if key in seen:
        raise PackFormatError(f"{where}: file '{path[:200]}' is listed twice.")
    seen.add(key)
    if "role" in entry and not isinstance(entry["role"], str):
        raise PackFormatError(f"{where}: file '{path[:200]}' has a role that is not text.")


def _check_bounds(manifest: dict[str, Any], where: Path) -> None:
    """Values other code trusts: names it shows, numbers it sizes buffers with."""
    check_pack_name(manifest["name"], str(where))
    for key in ("name", "architecture", "runtime"):
        value = manifest[key]
        if not value.strip() or len(value) > MAX_NAME_CHARS or any(ord(c) < 32 for c in value):
            raise PackFormatError(f"{where}: manifest field '{key}' must be a short single line of text.")
    ctx = manifest.get("context_length")
    if ctx is not None and not 1 <= ctx <= MAX_CONTEXT:
        raise PackFormatError(f"{where}: context length {ctx:,} is not plausible (1 to {MAX_CONTEXT:,}).")
    ram = (manifest.get("config") or {}).get("estimated_ram_bytes")
    if ram is not None and (not isinstance(ram, int) or isinstance(ram, bool) or ram < 0):
        raise PackFormatError(f"{where}: config.estimated_ram_bytes must be a non-negative whole number.")


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise PackFormatError(f"{root}: no {MANIFEST_NAME} here; this folder is not an Atelier pack.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise PackFormatError(f"{path}: manifest is implausibly large; refusing to read it.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackFormatError(f"{path}: manifest is not valid JSON ({exc}).") from None
    except RecursionError:
        raise PackFormatError(f"{path}: manifest is nested implausibly deep; refusing to read it.") from None
    _check_schema(manifest, path)
    return manifest


def load_pack(root: Path | str, verify_hashes: bool = True) -> Pack:
    """Read and check a pack. With ``verify_hashes`` every file is re-hashed: a pack that
    was changed, truncated or half-downloaded is refused with the file named."""
    root = Path(root)
    manifest = read_manifest(root)
    files: list[PackFile] = []
    for entry in manifest["files"]:
        target = confined_path(root, entry["path"])
        if os.path.lexists(target) or os.path.lexists(root / entry["path"]):
            check_regular_file(root, entry["path"], manifest["name"])
        if not target.is_file():
            raise PackIntegrityError(
                f"Pack '{manifest['name']}' is incomplete: file '{entry['path']}' is missing. "
                "Re-import or re-export the pack."
            )
        actual_size = target.stat().st_size
        if actual_size != entry["bytes"]:
            raise PackIntegrityError(
                f"Pack '{manifest['name']}': file '{entry['path']}' is {actual_size} bytes, "
                f"the manifest says {entry['bytes']}. It was truncated or modified."
            )
        if verify_hashes and sha256_file(target) != entry["sha256"]:
            raise PackIntegrityError(
                f"Pack '{manifest['name']}': file '{entry['path']}' does not match its SHA-256. "
                "It was modified or corrupted; refusing to load it."
            )
        files.append(PackFile(entry["path"], entry["sha256"], entry["bytes"], entry.get("role", "")))
    return Pack(root=root, manifest=manifest, files=files)


def describe_files(root: Path, roles: dict[str, str]) -> list[dict[str, Any]]:
    """Hash the files of a pack folder for its manifest. ``roles`` maps path -> role;
    every regular file under root except the manifest is listed."""
    root = Path(root)
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        rel = path.relative_to(root).as_posix()
        entries.append({"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size, "role": roles.get(rel, "")})
    return entries


def write_manifest(root: Path | str, manifest: dict[str, Any], roles: dict[str, str] | None = None) -> Pack:
    """Complete ``manifest`` with format, version and file hashes, write it, and return
    the pack as the app would load it (so a writer finds its own mistakes first)."""
    root = Path(root)
    full = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION}
    full.update(manifest)
    full["files"] = describe_files(root, roles or {})
    full.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _check_schema(full, root / MANIFEST_NAME)
    from desktop.engines.atomic_write import write_text_atomic

    # atomic (a crash never leaves half a manifest) and never through a planted link
    write_text_atomic(root / MANIFEST_NAME, json.dumps(full, indent=2, sort_keys=False, default=_json_default), overwrite=True)
    return load_pack(root, verify_hashes=False)


def _json_default(value: Any) -> Any:
    # numpy scalars sneak into validation reports; store them as plain numbers.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
