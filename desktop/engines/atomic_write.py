"""Every output file is written whole or not at all, and never over something by accident.

One helper for every writer (WAV, PNG, GIF/WebP, Markdown exports, the stores' files):

1. the bytes go to a temporary file in the destination's folder, created *exclusively*
   (``O_CREAT|O_EXCL|O_NOFOLLOW``, random name): a planted file or symlink under that name
   makes the open fail instead of being followed, and two jobs never share a temp file;
2. it is flushed and fsynced, then published under the final name:
   * without ``overwrite`` by ``os.link`` - atomic and refusing an existing name (a file,
     a directory, a symlink, dangling or not), so of two jobs writing one path exactly one
     succeeds and the other gets :class:`OutputExistsError`;
   * with ``overwrite`` by ``os.replace`` - atomic, and a symlink at the final name is
     replaced itself, its target is never written;
3. the folder is fsynced, so the new name survives a power cut.

A crash at any point leaves either the old state or the new file, plus at most one
``.<name>.<random>.part`` file that no reader lists.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from desktop.engines.errors import AtelierError, RequestError

PART_SUFFIX = ".part"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# errors that mean "this file system cannot make hard links", not "the name is taken"
_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1), errno.ENOSYS}


class OutputExistsError(RequestError):
    """The output's name is taken and replacing it was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f"'{path}' already exists; nothing was replaced. Choose another name or ask to overwrite it.")
        self.path = path


class OutputWriteError(AtelierError, OSError):
    """The output could not be written (full disk, no permission...). Also an OSError, so
    callers that catch OSError keep working; the message is one line for a person."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{PART_SUFFIX}")


def write_atomic(path: str | Path, data: bytes | Callable[[BinaryIO], object], overwrite: bool = False) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file object) to
    ``path`` as described in the module docstring. Returns ``path``."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise RequestError(f"'{path}' is not a file name.")
    tmp, fd = _create_exclusive(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path, overwrite)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, AtelierError):
            raise _write_error(path, exc) from None
        raise
    _sync_folder(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str, overwrite: bool = False) -> Path:
    return write_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def _create_exclusive(path: Path) -> tuple[Path, int]:
    for _ in range(16):  # a random 48-bit name is taken only if someone planted it
        tmp = temp_path_for(path)
        try:
            return tmp, os.open(tmp, _FLAGS, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _write_error(path, exc) from None
    raise OutputWriteError(errno.EEXIST, f"Could not create a temporary file next to '{path}'.")


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        if path.is_dir() and not path.is_symlink():
            raise RequestError(f"'{path}' is a folder; give a file name.")
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # tmp is our own regular file: nothing to follow
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _publish_without_links(tmp, path)
        return
    os.unlink(tmp)


def _publish_without_links(tmp: Path, path: Path) -> None:
    """File systems without hard links (FAT, some network shares): claim the name with an
    exclusive create - so still only one job wins - then rename over the claim."""
    try:
        os.close(os.open(path, _FLAGS, 0o666))
    except FileExistsError:
        raise OutputExistsError(path) from None
    os.replace(tmp, path)


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> OutputWriteError:
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted", errno.EACCES: "permission denied", errno.EROFS: "the disk is read-only", errno.ENOENT: "the folder does not exist", errno.ELOOP: "a symbolic link is in the way"}.get(exc.errno, exc.strerror or str(exc))
    return OutputWriteError(exc.errno or errno.EIO, f"Could not write '{path}': {reason}.")
