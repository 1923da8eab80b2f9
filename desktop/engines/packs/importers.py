"""Import into the library: our packs, foreign model folders, and .zip archives.

Each known foreign layout has a small registered importer that recognises a folder and
writes an Atelier manifest for it (hashing every file), so the rest of the app only ever
sees packs. The importers live with their modality (``text/importer.py``,
``speech/importer.py``, ``image/importer.py``); this module owns what they share: the
registry, folder/zip dispatch, the locked staging folder and the final checks. Archives are unpacked with every entry checked: no absolute paths, no
``..``, no links, and a cap on the unpacked size (zip bombs).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from desktop.engines.errors import AtelierError, ImportFormatError, PackError, PackFormatError, ResourceError, UnsafePathError
from desktop.engines.packs.library import Library
from desktop.engines.packs.checks import check_runtime_configs
from desktop.engines.packs.names import check_pack_name
from desktop.engines.packs.pack import MANIFEST_NAME, MAX_PACK_FILES, Pack, load_pack, stray_files, write_manifest
from desktop.engines.packs.archives import MAX_DEPTH, safe_extract
from desktop.engines.staging import pack_lock, staging_folder


log = logging.getLogger(__name__)


@dataclass
class Importer:
    name: str  # shown in "formats accepted" messages
    detect: Callable[[Path], bool]
    build: Callable[[Path, Path, str | None], dict]  # (source, dest copy, name) -> manifest fields


_IMPORTERS: list[Importer] = []


def importer(name: str, detect: Callable[[Path], bool]):
    def deco(build):
        _IMPORTERS.append(Importer(name, detect, build))
        return build

    return deco


def registered_importers() -> list[Importer]:
    """Every foreign-format importer, in detection order (each modality's module loaded)."""
    _load_modalities()
    return list(_IMPORTERS)


def accepted_formats() -> list[str]:
    _load_modalities()
    return ["Atelier pack (folder with manifest.json)", "a .zip of any of these", *[i.name for i in _IMPORTERS]]


def _load_modalities() -> None:
    # Each modality's package registers its own importers (text folders and GGUF files,
    # Piper voices, SD folders); text first, so detection order stays as it always was.
    import importlib

    for mod in ("desktop.engines.text.importer", "desktop.engines.speech.importer", "desktop.engines.image.importer"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def import_path(path: str | Path, library: Library, name: str | None = None) -> Pack:
    """Import ``path`` into ``library`` and return the verified pack.

    The pack is built in a locked staging folder inside the library and renamed into
    place only once complete and verified; every failure is one typed error."""
    path = Path(path).expanduser()
    try:
        return _import(path, library, name)
    except BaseException as exc:  # noqa: BLE001 - typed by _raise_typed (programming errors keep their traceback in the log)
        _raise_typed(exc, "a model", path, library)


def _import(path: Path, library: Library, name: str | None) -> Pack:
    if not path.exists():
        raise ImportFormatError(f"Nothing to import at '{path}'.")
    if name is not None:
        check_pack_name(name, "--name")
    if not os.access(library.root, os.W_OK | os.X_OK):
        raise PackError(f"The model library folder '{library.root}' is read-only; nothing can be imported into it.")
    with staging_folder(library.root) as work:
        source = path
        if path.is_file() and path.suffix.lower() == ".zip":
            unpacked = work / "unpacked"
            unpacked.mkdir()
            source = safe_extract(path, unpacked)
            if source == unpacked:  # no single top folder: name the pack after the archive
                name = name or path.stem
        elif not path.is_dir():
            _load_modalities()
            if not any(_detects(imp, path) for imp in _IMPORTERS):
                raise ImportFormatError(f"'{path.name}' is not a folder or .zip. Accepted: {'; '.join(accepted_formats())}.")
        return _import_folder(source, library, name, work / "pack")


def _import_folder(source: Path, library: Library, name: str | None, stage: Path) -> Pack:
    if (source / MANIFEST_NAME).is_file():
        pack = load_pack(source, verify_hashes=True)  # refuse a damaged pack before copying it
        _refuse_strays(source, pack)
        final = check_pack_name(name or pack.name, "import")
        with _claim(library, final):
            _copy_listed(pack, stage)
            if name:
                manifest = dict(pack.manifest, name=name)
                manifest.pop("files")
                write_manifest(stage, manifest, {f.path: f.role for f in pack.files})
            return _commit(stage, library, final)
    _load_modalities()
    for imp in _IMPORTERS:
        if _detects(imp, source):
            final = check_pack_name(name or (source.name if source.is_dir() else source.stem), "import")
            with _claim(library, final):
                try:
                    if source.is_dir():
                        _copy_tree(source, stage)
                    else:
                        stage.mkdir()  # a single-file format (GGUF) converts into the stage
                    fields = imp.build(source, stage, name)
                except BaseException as exc:  # noqa: BLE001 - typed with the format named
                    _raise_typed(exc, imp.name, source, library)
                fields["name"] = final
                roles = fields.pop("_roles", {})
                write_manifest(stage, fields, roles)
                return _commit(stage, library, final)
    raise ImportFormatError(f"'{source.name}' is not a model format Atelier knows. Accepted: {'; '.join(accepted_formats())}.")


@contextmanager
def _claim(library: Library, name: str):
    """Hold the pack's import lock, refusing a name that is taken or only looks different."""
    with pack_lock(library.root, library.destination(name).name):
        _check_free(library, name)
        yield


def _check_free(library: Library, name: str) -> None:
    clash = library.name_clash(name)
    dest = library.destination(name)
    if clash is None and dest.exists() and not any(e.root == dest and e.manifest for e in library.entries()):
        raise PackError(f"The library folder '{dest.name}' holds a broken pack; remove it first (`models remove {dest.name}` or the Library page).")
    if clash == name:
        raise PackError(f"A model named '{name}' is already installed. Remove it first or import under another --name.")
    if dest.exists():
        owner = next((e.name for e in library.entries() if e.root == dest), dest.name)
        raise PackError(f"The library folder '{dest.name}' is already taken by the installed model '{owner}'; import under another --name.")
    if clash:
        raise PackFormatError(f"The name '{name}' looks like the installed model '{clash}' (they differ only in look-alike or invisible characters); choose another --name.")


def _commit(stage: Path, library: Library, name: str) -> Pack:
    """Check the staged pack as a load would, then rename it into place atomically."""
    pack = load_pack(stage, verify_hashes=True)
    check_runtime_configs(pack)
    _refuse_strays(stage, pack)
    _check_free(library, name)
    dest = library.destination(name)
    try:
        os.rename(stage, dest)  # same filesystem: the pack appears whole or not at all
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise PackError(f"A model named '{name}' is already installed. Remove it first or import under another --name.") from None
        raise
    return load_pack(dest, verify_hashes=False)


def _detects(imp: Importer, path: Path) -> bool:
    try:
        return bool(imp.detect(path))
    except (OSError, ValueError):  # an unreadable folder is "not this format"
        return False


def _raise_typed(exc: BaseException, what: str, path: Path, library: Library | None = None):
    """Re-raise an import failure as a typed error naming what the folder looked like.
    Importers read files from anywhere: a malformed JSON or graph must not surface as a
    crash. Programming errors are still logged with their traceback."""
    if isinstance(exc, (AtelierError, KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc
    if isinstance(exc, MemoryError):
        raise ResourceError(f"Ran out of memory importing '{path.name}'.") from None
    if isinstance(exc, RecursionError):
        raise ImportFormatError(f"'{path.name}' is nested implausibly deep; refusing to import it.") from None
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        exc = OSError(errno.EIO, str(exc.args[0][0][-1]))
    if isinstance(exc, OSError):
        _raise_os_error(exc, path, library)
    log.warning("import of %s as %s failed", path, what, exc_info=exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    raise ImportFormatError(f"'{path.name}' looks like {what} but could not be read: {first}") from exc


def _raise_os_error(exc: OSError, path: Path, library: Library | None):
    """Ordinary filesystem failures, each as one line that says what to do."""
    code = exc.errno
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if code in (errno.ENOSPC, errno.EDQUOT):
        raise ResourceError(f"The disk is full; '{path.name}' could not be imported. Free some space and try again.") from None
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        if library is not None and getattr(exc, "filename", None) and str(library.root) in str(exc.filename):
            raise PackError(f"The model library folder '{library.root}' is not writable; nothing was imported.") from None
        raise ImportFormatError(f"'{path.name}' could not be read: permission denied{where}.") from None
    if code in (errno.ENOENT, errno.ESTALE):
        raise ImportFormatError(f"'{path.name}' changed while it was being imported (a file vanished{where}); nothing was imported.") from None
    if code in (errno.ENAMETOOLONG, errno.ELOOP):
        raise ImportFormatError(f"'{path.name}' is nested implausibly deep or has paths too long to copy; refusing to import it.") from None
    raise ImportFormatError(f"'{path.name}' could not be imported: {exc.strerror or exc}{where}.") from None




def _copy_tree(src: Path, dest: Path) -> None:
    """Copy a foreign model folder: regular files and folders only, bounded in depth."""
    count = 0
    dest.mkdir()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False, onerror=_walk_error):
        rel = Path(dirpath).relative_to(src)
        if len(rel.parts) >= MAX_DEPTH and (dirnames or filenames):
            raise ImportFormatError(f"'{src.name}' is nested more than {MAX_DEPTH} folders deep; refusing to import it.")
        for n in dirnames:
            _refuse_special(Path(dirpath) / n, n, want_dir=True)
            (dest / rel / n).mkdir()
        for n in filenames:
            _refuse_special(Path(dirpath) / n, n, want_dir=False)
            count += 1
            if count > MAX_PACK_FILES:
                raise ImportFormatError(f"'{src.name}' holds more than {MAX_PACK_FILES:,} files; refusing to import it.")
            shutil.copyfile(Path(dirpath) / n, dest / rel / n, follow_symlinks=False)


def _walk_error(exc: OSError) -> None:
    raise exc


def _refuse_special(path: Path, name: str, want_dir: bool) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"'{name}' is a symbolic link; packs may not contain links.")
    if not (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)):
        raise UnsafePathError(f"'{name}' is not a regular file (a pipe or device?); refusing to import it.")


def _refuse_strays(root: Path, pack: Pack) -> None:
    """A pack is exactly what its manifest lists: anything else in the folder is refused."""
    strays = stray_files(root, pack.manifest)
    if not strays:
        return
    first = root / strays[0]
    mode = os.lstat(first).st_mode
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"'{strays[0]}' in pack '{pack.name}' is a symbolic link; packs may not contain links.")
    if not stat.S_ISREG(mode):
        raise UnsafePathError(f"'{strays[0]}' in pack '{pack.name}' is not a regular file (a pipe or device?); refusing to import it.")
    more = f" (and {len(strays) - 1} more)" if len(strays) > 1 else ""
    raise UnsafePathError(f"'{strays[0]}'{more} is in pack '{pack.name}' but not in its manifest; a pack holds only listed, hashed files. Remove it or re-export the pack.")


def _copy_listed(pack: Pack, stage: Path) -> None:
    """Copy an Atelier pack: its manifest and the files it lists, nothing else."""
    stage.mkdir()
    for f in pack.files:
        target = stage / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pack.path_of(f.path), target, follow_symlinks=False)
    shutil.copyfile(pack.root / MANIFEST_NAME, stage / MANIFEST_NAME, follow_symlinks=False)


# -- helpers for the modality importers -------------------------------------------


def guess_precision(folder: Path) -> str:
    """Read the graphs (structure only, no weights) for quantized ops or fp16 weights."""
    import onnx

    bits, fp16 = set(), False
    for path in folder.rglob("*.onnx"):
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception:  # a broken graph is reported when the engine loads it
            continue
        for node in model.graph.node:
            if node.op_type == "MatMulNBits":
                bits.update(a.i for a in node.attribute if a.name == "bits")
            elif node.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul"):
                bits.add(8)
        fp16 = fp16 or any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    if bits:
        return "int4" if 4 in bits and len(bits) == 1 else ("int8" if bits == {8} else "mixed")
    return "fp16" if fp16 else "fp32"


def read_model_card(folder: Path) -> str:
    readme = folder / "README.md"
    return readme.read_text(encoding="utf-8", errors="replace")[:20000] if readme.is_file() else ""
