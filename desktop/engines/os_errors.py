"""Turn an ``OSError`` into the typed error that explains it to a person.

A full disk or a read-only folder is an ordinary condition, not a bug in Atelier, so it
must never reach the user as "unexpected failure" (exit 70). The errno decides the type;
``filename`` (when the OS gave one) says which file.
"""

from __future__ import annotations

import errno
import os

from desktop.engines.errors import AtelierError, DiskFullError, FileSystemError, InputFileError, OutputFileError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS}
_PERMISSION = {errno.EACCES, errno.EPERM}
_MISSING = {errno.ENOENT, errno.ENOTDIR}


def _name(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else exc.filename2
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return f" '{name}'" if name else ""


def classify_os_error(exc: OSError, writing: bool | None = None) -> AtelierError:
    """The typed error for ``exc``. ``writing`` says whether the failing step was
    writing (True), reading (False) or unknown (None: guessed from the errno)."""
    where, code = _name(exc), exc.errno
    reason = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    if code in _DISK_FULL:
        return DiskFullError(f"The disk is full (writing{where or ' a file'}). Free some space and try again.")
    if code == errno.EFBIG:
        return DiskFullError(f"Cannot write{where or ' a file'}: the file is too large for this file system or for your file-size limit.")
    if code in _READ_ONLY:
        return OutputFileError(f"Cannot write{where}: the folder is on a read-only file system. Choose another folder.")
    if code in _PERMISSION:
        cls = InputFileError if writing is False else OutputFileError
        verb = "read" if writing is False else ("write" if writing else "open")
        return cls(f"Permission denied: cannot {verb}{where}. Check the file's permissions or choose another location.")
    if code == errno.EISDIR:
        cls = OutputFileError if writing else InputFileError
        return cls(f"{where.strip() or 'The path'} is a folder; a file is needed here.")
    if code in _MISSING:
        cls = OutputFileError if writing else InputFileError
        return cls(f"No such file or folder:{where or ' (unnamed)'}.")
    if code == errno.ENAMETOOLONG:
        cls = OutputFileError if writing else InputFileError
        return cls(f"The file name is too long:{where[:120]}.")
    if code == errno.ELOOP:
        return InputFileError(f"Too many symbolic links (or a link where none is allowed):{where}.")
    return FileSystemError(f"The operating system refused{where or ' a file operation'}: {reason}.")
