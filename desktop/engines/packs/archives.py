"""Unpacking .zip imports with every entry checked before anything is written: no
absolute paths, no ``..``, no links, no name that is both a file and a folder, bounded
depth, and a cap on the unpacked size (zip bombs)."""

from __future__ import annotations

import errno
import shutil
import zipfile
import zlib
from pathlib import Path

from desktop.engines.errors import ImportFormatError, ResourceError, UnsafePathError

MAX_ARCHIVE_BYTES = 16 * 1024**3
MAX_ARCHIVE_ENTRIES = 10_000
MAX_RATIO = 200  # uncompressed / compressed per entry; beyond this it is a bomb, not a model
MAX_DEPTH = 32  # folders inside a pack; real ones use two or three


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
    total, seen, files, folders = 0, set(), set(), set()
    for info in infos:
        name = _entry_name(info)  # a backslash is a separator on Windows: treat it as one here too
        parts = [p for p in name.split("/") if p]
        if not parts or name.startswith("/") or ".." in parts or ":" in name or "\0" in name:
            raise UnsafePathError(f"Archive entry '{info.filename}' points outside the archive; refusing to import.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UnsafePathError(f"Archive entry '{info.filename}' is a symbolic link; refusing to import.")
        if info.flag_bits & 0x1:
            raise ImportFormatError(f"'{archive.name}' is password-protected; unpack it yourself and import the folder.")
        if len(parts) > MAX_DEPTH:
            raise ImportFormatError(f"'{archive.name}' nests entries more than {MAX_DEPTH} folders deep; refusing to import it.")
        key = "/".join(parts).lower()
        if key in seen:
            raise UnsafePathError(f"Archive entry '{info.filename}' appears twice; refusing an ambiguous archive.")
        seen.add(key)
        if not info.is_dir():
            files.add(key)
            folders.update("/".join(parts[:i]).lower() for i in range(1, len(parts)))
        total += info.file_size
        if total > MAX_ARCHIVE_BYTES or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20):
            raise ImportFormatError(f"'{archive.name}' expands to an implausible size (a zip bomb?); refusing to import.")
    both = sorted(files & folders)
    if both:
        raise UnsafePathError(f"'{archive.name}' holds '{both[0]}' both as a file and as a folder; refusing an ambiguous archive.")
    size = archive.stat().st_size
    if total > 64 << 20 and total > MAX_RATIO * max(size, 1):
        # many small entries, each under the per-entry check, can still add up to a bomb
        raise ImportFormatError(f"'{archive.name}' expands to an implausible size (a zip bomb?); refusing to import.")
