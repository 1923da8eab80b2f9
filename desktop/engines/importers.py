"""Import into the library: our packs, foreign model folders, and .zip archives.

Each known foreign layout has a small registered importer that recognises a folder and
writes an Atelier manifest for it (hashing every file), so the rest of the app only ever
sees packs. Archives are unpacked with every entry checked: no absolute paths, no
``..``, no links, and a cap on the unpacked size (zip bombs).
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import AtelierError, ImportFormatError, PackError, ResourceError, UnsafePathError
from .library import Library
from .packs import MANIFEST_NAME, Pack, load_pack, write_manifest

MAX_ARCHIVE_BYTES = 16 * 1024**3
MAX_ARCHIVE_ENTRIES = 10_000
MAX_RATIO = 200  # uncompressed / compressed per entry; beyond this it is a bomb, not a model

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


def accepted_formats() -> list[str]:
    _load_modalities()
    return ["Atelier pack (folder with manifest.json)", "a .zip of any of these", *[i.name for i in _IMPORTERS]]


def _load_modalities() -> None:
    # Speech and image modules register their importers (Piper voices, SD folders).
    import importlib

    for mod in ("desktop.engines.speech_import", "desktop.engines.image_import"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def import_path(path: str | Path, library: Library, name: str | None = None) -> Pack:
    """Import ``path`` into ``library`` and return the verified pack."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ImportFormatError(f"Nothing to import at '{path}'.")
    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix=".import-", dir=library.root) as tmp:
            root = safe_extract(path, Path(tmp))
            return import_path(root, library, name)
    _load_modalities()
    if not path.is_dir() and not any(_detects(imp, path) for imp in _IMPORTERS):
        raise ImportFormatError(f"'{path.name}' is not a folder or .zip. Accepted: {'; '.join(accepted_formats())}.")
    if (path / MANIFEST_NAME).is_file():
        pack = load_pack(path, verify_hashes=True)  # refuse a damaged pack before copying it
        dest = _fresh_destination(library, name or pack.name)
        try:
            _copy_tree(path, dest)
            if name:
                manifest = dict(pack.manifest, name=name)
                manifest.pop("files")
                write_manifest(dest, manifest, {f.path: f.role for f in pack.files})
            return load_pack(dest)
        except BaseException as exc:
            shutil.rmtree(dest, ignore_errors=True)  # never leave half an import behind
            _raise_typed(exc, "an Atelier pack", path)
    _load_modalities()
    for imp in _IMPORTERS:
        if _detects(imp, path):
            dest = _fresh_destination(library, name or (path.name if path.is_dir() else path.stem))
            try:
                _copy_tree(path, dest) if path.is_dir() else dest.mkdir(parents=True)  # a single-file format converts into dest
                fields = imp.build(path, dest, name)
                fields.setdefault("name", name or path.name)
                roles = fields.pop("_roles", {})
                write_manifest(dest, fields, roles)
                return load_pack(dest)
            except BaseException as exc:
                shutil.rmtree(dest, ignore_errors=True)  # never leave half an import behind
                _raise_typed(exc, imp.name, path)
    raise ImportFormatError(f"'{path.name}' is not a model format Atelier knows. Accepted: {'; '.join(accepted_formats())}.")


def _detects(imp: Importer, path: Path) -> bool:
    try:
        return bool(imp.detect(path))
    except (OSError, ValueError):  # an unreadable folder is "not this format"
        return False


def _raise_typed(exc: BaseException, what: str, path: Path):
    """Re-raise an import failure as a typed error naming what the folder looked like.
    Importers read files from anywhere: a malformed JSON or graph must not surface as a
    crash. Programming errors are still logged with their traceback."""
    if isinstance(exc, (AtelierError, KeyboardInterrupt, SystemExit)):
        raise exc
    if isinstance(exc, MemoryError):
        raise ResourceError(f"Ran out of memory importing '{path.name}'.") from None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        raise ResourceError(f"The disk is full; '{path.name}' could not be imported.") from None
    log.warning("import of %s as %s failed", path, what, exc_info=exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    raise ImportFormatError(f"'{path.name}' looks like {what} but could not be read: {first}") from exc


def _fresh_destination(library: Library, name: str) -> Path:
    dest = library.destination(name)
    if dest.exists():
        raise PackError(f"A model named '{dest.name}' is already installed. Remove it first or import under another --name.")
    return dest


def _copy_tree(src: Path, dest: Path) -> None:
    def refuse_links(directory, names):
        for n in names:
            if (Path(directory) / n).is_symlink():
                raise UnsafePathError(f"'{n}' is a symbolic link; packs may not contain links.")
            if not ((Path(directory) / n).is_file() or (Path(directory) / n).is_dir()):
                raise UnsafePathError(f"'{n}' is not a regular file (a pipe or device?); refusing to import it.")
        return []

    shutil.copytree(src, dest, ignore=refuse_links)


def safe_extract(archive: Path, into: Path) -> Path:
    """Unpack a zip refusing traversal, links and bombs; return the pack root inside."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ImportFormatError(f"'{archive.name}' is not a readable zip archive ({exc}).") from None
    with zf:
        infos = zf.infolist()
        _check_entries(archive, infos)
        try:
            free = shutil.disk_usage(into).free
        except OSError:
            free = None
        total = sum(i.file_size for i in infos)
        if free is not None and total > free:
            raise ResourceError(f"'{archive.name}' unpacks to {total / 2**30:.1f} GB but the disk has {free / 2**30:.1f} GB free.")
        for info in infos:
            target = (into / _entry_name(info)).resolve()
            if into.resolve() not in target.parents and target != into.resolve():
                raise UnsafePathError(f"Archive entry '{info.filename}' points outside the archive.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    written = 0
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > info.file_size:  # a lying header
                            raise ImportFormatError(f"Archive entry '{info.filename}' is larger than declared; refusing.")
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
                raise ImportFormatError(f"'{archive.name}' is damaged: entry '{info.filename}' cannot be unpacked ({exc}).") from None
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise ResourceError(f"The disk filled up while unpacking '{archive.name}'.") from None
                raise ImportFormatError(f"Entry '{info.filename}' of '{archive.name}' cannot be written ({exc.strerror}).") from None
    entries = [p for p in into.iterdir() if not p.name.startswith("__MACOSX")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _entry_name(info: zipfile.ZipInfo) -> str:
    return info.filename.replace("\\", "/")


def _check_entries(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Every entry is checked before anything is written."""
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise ImportFormatError(f"'{archive.name}' has {len(infos)} entries; refusing more than {MAX_ARCHIVE_ENTRIES}.")
    if not infos:
        raise ImportFormatError(f"'{archive.name}' is an empty archive.")
    total, seen = 0, set()
    for info in infos:
        name = _entry_name(info)  # a backslash is a separator on Windows: treat it as one here too
        parts = [p for p in name.split("/") if p]
        if not parts or name.startswith("/") or ".." in parts or ":" in name or "\0" in name:
            raise UnsafePathError(f"Archive entry '{info.filename}' points outside the archive; refusing to import.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UnsafePathError(f"Archive entry '{info.filename}' is a symbolic link; refusing to import.")
        if info.flag_bits & 0x1:
            raise ImportFormatError(f"'{archive.name}' is password-protected; unpack it yourself and import the folder.")
        key = "/".join(parts).lower()
        if key in seen:
            raise UnsafePathError(f"Archive entry '{info.filename}' appears twice; refusing an ambiguous archive.")
        seen.add(key)
        total += info.file_size
        if total > MAX_ARCHIVE_BYTES or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20):
            raise ImportFormatError(f"'{archive.name}' expands to an implausible size (a zip bomb?); refusing to import.")
    size = archive.stat().st_size
    if total > 64 << 20 and total > MAX_RATIO * max(size, 1):
        # many small entries, each under the per-entry check, can still add up to a bomb
        raise ImportFormatError(f"'{archive.name}' expands to an implausible size (a zip bomb?); refusing to import.")


# -- text folders --------------------------------------------------------------------


def _is_genai_folder(path: Path) -> bool:
    return (path / "genai_config.json").is_file() and (path / "tokenizer.json").is_file()


@importer("onnxruntime-genai model folder (genai_config.json + model.onnx + tokenizer.json)", _is_genai_folder)
def _import_genai(src: Path, dest: Path, name: str | None) -> dict:
    cfg = json.loads((dest / "genai_config.json").read_text())
    model = cfg.get("model", {})
    decoder = model.get("decoder", {})
    graph = decoder.get("filename", "model.onnx")
    if not (dest / graph).is_file():
        raise ImportFormatError(f"genai_config.json names '{graph}', which is not in the folder.")
    return {
        "architecture": model.get("type", "unknown"),
        "runtime": "onnxruntime-genai",
        "modality": "text",
        "precision": _guess_precision(dest),
        "context_length": model.get("context_length"),
        "io": {"decoder": {"inputs": list(decoder.get("inputs", {}).values()), "outputs": list(decoder.get("outputs", {}).values())}},
        "config": {
            "num_layers": decoder.get("num_hidden_layers"),
            "num_key_value_heads": decoder.get("num_key_value_heads"),
            "head_dim": decoder.get("head_size"),
            "eos_token_id": model.get("eos_token_id"),
        },
        "source": {"location": str(src), "kind": "onnxruntime-genai folder"},
        "license": {"id": "unknown (imported; see the source's model card)"},
        "model_card": _readme(src),
        "_roles": {graph: "decoder", "tokenizer.json": "tokenizer"},
    }


def _is_optimum_decoder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "tokenizer.json").is_file() and bool(_optimum_graph(path))


def _optimum_graph(path: Path) -> str:
    for cand in ("model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx", "onnx/model.onnx", "onnx/model_quantized.onnx"):
        if (path / cand).is_file():
            return cand
    return ""


@importer("optimum / onnx-community decoder folder (config.json + model.onnx with past_key_values)", _is_optimum_decoder)
def _import_optimum(src: Path, dest: Path, name: str | None) -> dict:
    import onnx

    graph = _optimum_graph(dest)
    model = onnx.load(str(dest / graph), load_external_data=False)
    inputs = [i.name for i in model.graph.input]
    if not any(n.startswith("past_key_values.") for n in inputs):
        raise ImportFormatError(f"'{graph}' has no past_key_values inputs; only KV-cache decoder exports can be imported.")
    cfg = json.loads((dest / "config.json").read_text())
    heads = cfg.get("num_attention_heads") or cfg.get("n_head")
    return {
        "architecture": cfg.get("model_type", "unknown"),
        "runtime": "onnxruntime",
        "modality": "text",
        "precision": _guess_precision(dest),
        "context_length": cfg.get("max_position_embeddings") or cfg.get("n_positions"),
        "io": {"decoder": {"inputs": inputs, "outputs": [o.name for o in model.graph.output]}},
        "config": {
            "num_layers": cfg.get("num_hidden_layers") or cfg.get("n_layer"),
            "num_key_value_heads": cfg.get("num_key_value_heads") or heads,
            "head_dim": cfg.get("head_dim") or ((cfg.get("hidden_size") or cfg.get("n_embd") or 0) // (heads or 1)),
            "eos_token_id": cfg.get("eos_token_id"),
        },
        "source": {"location": str(src), "kind": "optimum folder"},
        "license": {"id": "unknown (imported; see the source's model card)"},
        "model_card": _readme(src),
        "_roles": {graph: "decoder", "tokenizer.json": "tokenizer"},
    }


def _guess_precision(folder: Path) -> str:
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


def _readme(folder: Path) -> str:
    readme = folder / "README.md"
    return readme.read_text(encoding="utf-8", errors="replace")[:20000] if readme.is_file() else ""


def _is_gguf_file(path: Path) -> bool:
    # by name only: a damaged .gguf should hear what is wrong with it, not "unknown format"
    return path.is_file() and path.suffix.lower() == ".gguf"


@importer("GGUF model file (.gguf: llama-family, converted keeping its quantization)", _is_gguf_file)
def _import_gguf(src: Path, dest: Path, name: str | None) -> dict:
    from .gguf.convert import convert_gguf

    fields = convert_gguf(src, dest)
    fields["name"] = name or dest.name
    return fields
