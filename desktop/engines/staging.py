"""Work folders and locks inside the library, so it never holds half a pack.

An import is built in ``.staging-XXXX/pack`` inside the library folder (same filesystem)
and renamed into place only when complete and verified: a killed import leaves a hidden
work folder, never a half pack under a real name. Each work folder holds ``owner.lock``,
locked (flock) for as long as its process lives; the kernel drops the lock when the
process dies, however it dies, so the next start can tell a leftover from an import still
running in another process and remove only the leftover.

Per-pack locks (``.locks/<folder>.lock``) make two imports of the same pack exclusive:
the second one is told "already being imported" and touches nothing.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from desktop.engines.errors import PackError

log = logging.getLogger(__name__)
STAGING_PREFIX = ".staging-"
OWNER_LOCK = "owner.lock"
LOCK_DIR = ".locks"
# Work folders other writers (the exporters' ``.export-``, older imports) leave without a
# lock: removed once nothing in them has changed for this long, so a long export that is
# still running is never pulled from under it.
UNLOCKED_WORK_PREFIXES = (".import-", ".export-", ".hibari-")
STALE_UNLOCKED_S = 3600
# A staging folder whose owner died before taking its lock (a split second after mkdir).
STALE_UNOWNED_S = 120


class ImportBusyError(PackError):
    """Another import of the same pack is running right now."""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


@contextmanager
def staging_folder(library_root: Path) -> Iterator[Path]:
    """A fresh locked work folder in the library (same filesystem, so a finished pack is
    renamed into place). Whatever is still in it on exit is removed."""
    work = Path(library_root) / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    work.mkdir()
    fd = os.open(work / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)  # ours: created above, never someone else's
        os.close(fd)


@contextmanager
def pack_lock(library_root: Path, folder_name: str) -> Iterator[None]:
    """Hold the import lock of one pack folder name, or raise ImportBusyError.

    The lock only turns a second import into a clear message early; correctness does not
    rest on it (the final rename refuses to replace an existing pack), so the lock file
    is removed on release and the library folder stays free of lock files."""
    locks = Path(library_root) / LOCK_DIR
    path = locks / f"{folder_name}.lock"
    for attempt in range(5):
        locks.mkdir(exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            break
        except FileNotFoundError:  # another job removed the empty lock folder just now
            if attempt == 4:
                raise
    try:
        if not _try_lock(fd) or os.fstat(fd).st_ino != _inode(path):
            raise ImportBusyError(f"'{folder_name}' is already being imported by another job; wait for it to finish.")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            try:
                locks.rmdir()
            except OSError:
                pass  # other locks are held, or it is already gone
    finally:
        os.close(fd)


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _newest_change(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                pass
    return newest


def clean_leftovers(library_root: Path) -> list[Path]:
    """Remove work folders whose owner is gone; return what was removed. Never raises:
    a library that cannot be cleaned still lists its packs."""
    removed = []
    try:
        candidates = [p for p in Path(library_root).iterdir() if p.name.startswith(".") and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    now = time.time()
    for folder in candidates:
        try:
            if folder.name.startswith(STAGING_PREFIX):
                dead = _owner_gone(folder, now)
            elif folder.name.startswith(UNLOCKED_WORK_PREFIXES):
                dead = now - _newest_change(folder) > STALE_UNLOCKED_S
            else:
                continue
            if dead:
                shutil.rmtree(folder)
                removed.append(folder)
                log.info("removed the leftover work folder %s", folder.name)
        except OSError as exc:
            log.info("could not clean %s: %s", folder.name, exc)
    return removed


def _owner_gone(folder: Path, now: float) -> bool:
    try:
        fd = os.open(folder / OWNER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return now - folder.lstat().st_mtime > STALE_UNOWNED_S
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)
