"""A local, append-only, hash-chained audit log of every job.

One JSON line per job in ``<data dir>/audit.log``: time, job kind, pack name and hash,
the SHA-256 of the settings and of the output, the previous record's hash and this
record's own hash (SHA-256 of the canonical JSON of all other fields). ``audit.head``
holds the newest record's sequence number and hash, so removing the last records is
detected as well as editing, inserting or removing any earlier one.

Crash-consistent: a record is appended and fsynced first, then the head is replaced
atomically. A crash (or a full disk) between the two leaves a head one record behind:
that is an unanchored newest record, not tampering, and the next job re-anchors it. A
torn last line (killed mid-write) is cut off by the next writer. A damaged line is kept
and reported with its line number by :func:`verify`; jobs go on being recorded after it,
chained to the last intact record, with a notice. Nothing here follows a symbolic link.

What it proves: that the log was not edited *by accident or by someone unaware of
the chain*. Someone with write access who recomputes every hash can rewrite it all;
a local log cannot prevent that, and the viewer says so.

:mod:`desktop.outputs.saving` calls :func:`record_job` after each job, for the studios,
the CLI and the API server alike (it never raises: a full disk must not turn a finished
image into an error).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from desktop.engines.atomic_write import write_text_atomic
from desktop.engines.errors import AtelierError, ProvenanceError
from desktop.engines.packs.library import data_dir

log = logging.getLogger(__name__)

LOG_NAME = "audit.log"
HEAD_NAME = "audit.head"
GENESIS = "0" * 64
FIELDS = ("seq", "time", "kind", "pack", "pack_sha256", "settings_sha256", "output_sha256", "prev")
MAX_LINE = 64 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def log_path(root: Path | None = None) -> Path:
    return (Path(root) if root else data_dir()) / LOG_NAME


def _head_path(log_file: Path) -> Path:
    return log_file.with_name(HEAD_NAME)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: record.get(k) for k in FIELDS})).hexdigest()


def settings_hash(settings: Any) -> str:
    """Settings as canonical JSON, hashed: equal settings give equal hashes."""
    if hasattr(settings, "__dataclass_fields__"):
        from dataclasses import asdict

        settings = asdict(settings)
    return hashlib.sha256(_canonical(settings)).hexdigest()


def output_hash(output: bytes | str | Path | None) -> str:
    if output is None:
        return ""
    if isinstance(output, Path):
        from desktop.engines.packs.pack import sha256_file

        return sha256_file(output)
    if isinstance(output, str):
        output = output.encode("utf-8")
    return hashlib.sha256(bytes(output)).hexdigest()


@contextmanager
def _locked(log_file: Path):
    """One writer at a time across processes (the app and the CLI may both append)."""
    fd = _open(log_file.with_name(LOG_NAME + ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: msvcrt locks a byte range instead
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        yield
    finally:
        os.close(fd)


def _open(path: Path, flags: int) -> int:
    """os.open that refuses a symbolic link (a planted link must not redirect our writes
    or truncations to another file)."""
    try:
        return os.open(path, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (path.is_symlink() and exc.errno in (errno.EMLINK, errno.EEXIST)):
            raise ProvenanceError(f"{path.name} is a symbolic link; Atelier does not follow it. Move it away and restore the real file ({path}).") from None
        raise


def _read_head(log_file: Path) -> dict[str, Any] | None:
    head = _head_path(log_file)
    if not head.is_file() and not head.is_symlink():
        return None
    try:
        fd = _open(head, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(4096).decode("utf-8"))
    except (ValueError, OSError, RecursionError, ProvenanceError, UnicodeDecodeError):
        return {"seq": -1, "hash": "unreadable"}
    return data if isinstance(data, dict) else {"seq": -1, "hash": "unreadable"}


def _write_head(log_file: Path, seq: int, digest: str) -> None:
    write_text_atomic(_head_path(log_file), json.dumps({"seq": seq, "hash": digest}), overwrite=True)


def _intact(rec: Any) -> bool:
    return isinstance(rec, dict) and isinstance(rec.get("seq"), int) and rec.get("hash") == record_hash(rec)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


@dataclass
class _Tail:
    last: dict[str, Any] | None  # the newest intact record (the next one chains from it)
    damaged_after: int  # complete lines after it that are not intact records
    size: int  # bytes of complete lines (a torn last line is beyond this)


def _scan_tail(fd: int) -> _Tail:
    """The newest intact record, read from the end (the whole file only when the tail
    holds none)."""
    size = os.fstat(fd).st_size
    window = 2 * MAX_LINE
    while True:
        start = max(0, size - window)
        os.lseek(fd, start, os.SEEK_SET)
        data = _read_all(fd, size - start)
        complete = size - (len(data) - (data.rfind(b"\n") + 1))
        lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
        if start > 0:
            lines = lines[1:]  # the first line of the window may be cut
        damaged = 0
        for raw in reversed(lines):
            rec = _parse(raw)
            if _intact(rec):
                return _Tail(rec, damaged, complete)
            damaged += 1
        if start == 0:
            return _Tail(None, damaged, complete)
        window *= 8


def _read_all(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def append(kind: str, pack=None, settings: Any = None, output: bytes | str | Path | None = None, root: Path | None = None) -> dict[str, Any]:
    """Add one job to the log and return its record. ``pack`` is a Pack (or None).
    After damage the record chains to the last intact one and ``record["notice"]`` (not
    part of the stored record) says so."""
    log_file = log_path(root)
    try:
        with _locked(log_file):
            fd = _open(log_file, os.O_RDWR | os.O_CREAT)
            try:
                tail = _scan_tail(fd)
                if tail.size < os.fstat(fd).st_size:
                    os.ftruncate(fd, tail.size)  # a torn last line: a write the crash interrupted
                if tail.size == 0 and _read_head(log_file) is None:
                    # anchor the empty log first: then a missing head is always damage, even
                    # when the very first job crashed before anchoring its record
                    _write_head(log_file, -1, GENESIS)
                last = tail.last
                record = {
                    "seq": (int(last["seq"]) + 1) if last else 0,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "kind": str(kind),
                    "pack": getattr(pack, "name", "") or "",
                    "pack_sha256": getattr(pack, "pack_hash", "") or "",
                    "settings_sha256": settings_hash(settings) if settings is not None else "",
                    "output_sha256": output_hash(output),
                    "prev": last["hash"] if last else GENESIS,
                }
                record["hash"] = record_hash(record)
                line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
                os.lseek(fd, tail.size, os.SEEK_SET)
                try:
                    _write_all(fd, line)
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, tail.size)  # a full disk: leave no half record behind
                    raise
            finally:
                os.close(fd)
            try:
                _write_head(log_file, record["seq"], record["hash"])
            except (OSError, AtelierError) as exc:  # the record is safe; verify calls it unanchored, the next job anchors it
                log.warning("audit record #%s written, its anchor (audit.head) not: %s", record["seq"], exc)
    except OSError as exc:
        raise ProvenanceError(f"Could not write the audit log {log_file}: {exc.strerror or exc}.") from None
    if tail.damaged_after or (last is None and tail.size):
        record = {**record, "notice": f"The audit log has damaged lines before this record; it was recorded after them. Run `python main.py audit verify` for where ({log_file})."}
    return record


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_NOTICED: set[str] = set()
_NOTICE_LISTENERS: list = []


def add_notice_listener(callback) -> None:
    """``callback(text)`` for each new notice about the log (damage found while recording),
    e.g. the window's notifier; called on the thread that recorded the job."""
    _NOTICE_LISTENERS.append(callback)


def record_job(kind: str, pack=None, settings: Any = None, output: bytes | str | Path | None = None) -> dict[str, Any] | None:
    """The one-line hook for studios: append, and log (never raise) on failure. A notice
    about damage is logged, and printed to stderr once per process."""
    try:
        record = append(kind, pack, settings, output)
    except Exception:  # noqa: BLE001 - auditing must never fail the user's job
        log.exception("could not append to the audit log")
        return None
    notice = record.get("notice")
    if notice:
        log.warning("%s", notice)
        if notice not in _NOTICED:
            _NOTICED.add(notice)
            print(f"note: {notice}", file=sys.stderr)
            for callback in list(_NOTICE_LISTENERS):
                try:
                    callback(notice)
                except Exception:  # noqa: BLE001 - a listener must not fail the job
                    log.exception("audit notice listener failed")
    return record


def records(root: Path | None = None) -> Iterator[dict[str, Any]]:
    """Parsed records in order; lines that are not JSON objects are skipped."""
    log_file = log_path(root)
    if not log_file.is_file() or log_file.is_symlink():
        return
    with os.fdopen(_open(log_file, os.O_RDONLY), "r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict):
                yield rec


@dataclass
class AuditReport:
    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)
    note: str = ""

    def message(self) -> str:
        if self.ok:
            return f"Audit log intact: {self.records} record(s), every hash and link verified.{(' ' + self.note) if self.note else ''}"
        shown = "; ".join(self.problems[:5]) + (f"; and {len(self.problems) - 5} more" if len(self.problems) > 5 else "")
        return f"Audit log DAMAGED ({self.records} record(s) read): {shown}"


def verify(root: Path | None = None) -> AuditReport:
    """Check every record's hash and link, and the head anchor; say what is damaged and
    where (line numbers). Crash artifacts - a torn last line, a head one write behind -
    are notes, not damage."""
    log_file = log_path(root)
    head = _read_head(log_file)
    if log_file.is_symlink():
        return AuditReport(False, 0, [f"{LOG_NAME} is a symbolic link; Atelier neither reads nor writes through it (move it away and restore the real log)"])
    if not log_file.is_file():
        if head is not None and head.get("seq") != -1:
            return AuditReport(False, 0, [f"the log file is missing but the head says {_int(head.get('seq')) + 1} record(s) were written"])
        return AuditReport(True, 0, note="No jobs recorded yet.")
    with os.fdopen(_open(log_file, os.O_RDONLY), "rb") as fh:
        raw_lines = fh.read().split(b"\n")
    notes: list[str] = []
    if raw_lines[-1] != b"":
        notes.append("The last write was interrupted (app stopped mid-record); that partial line is ignored.")
    raw_lines.pop()
    problems: list[str] = []
    anchor: dict[str, Any] | None = None  # the newest intact record
    edited: dict[str, Any] | None = None  # a parsed record after it whose hash is wrong
    by_seq: dict[int, dict[str, Any]] = {}
    count = 0
    for number, raw in enumerate(raw_lines, start=1):
        rec = _parse(raw)
        if rec is None:
            problems.append(f"line {number} is not a valid record (damaged or edited)")
            continue
        count += 1
        seq = rec.get("seq")
        # the record may chain to the newest intact one (written after damage) or to an
        # edited one (written before the edit): either way the edit itself is reported
        parents = [anchor] + ([edited] if edited is not None else [])
        if not any(_links(rec, parent) for parent in parents):
            expected = (anchor["seq"] + 1) if anchor else 0
            if seq != expected:
                problems.append(f"line {number}: record #{seq} where #{expected} was expected (records removed or inserted)")
            if rec.get("prev") != (anchor["hash"] if anchor else GENESIS):
                problems.append(f"line {number}: record #{seq}'s link to the previous record is broken (a record before it was edited or removed)")
        if _intact(rec):
            anchor, edited = rec, None
            by_seq[seq] = rec
        else:
            problems.append(f"line {number}: record #{seq}'s contents do not match its hash (edited)")
            edited = rec
    problems += _check_head(head, anchor, by_seq, notes)
    return AuditReport(not problems, count, problems, " ".join(notes))


def _links(rec: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    if parent is None:
        return rec.get("seq") == 0 and rec.get("prev") == GENESIS
    return rec.get("seq") == _int(parent.get("seq")) + 1 and rec.get("prev") == parent.get("hash")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _check_head(head: dict[str, Any] | None, newest: dict[str, Any] | None, by_seq: dict[int, dict[str, Any]], notes: list[str]) -> list[str]:
    """The head anchors the newest record: a log that ends before it lost records; a log
    that goes past it only lost the head update of the last job(s) (a crash, a full disk)."""
    if head is None:
        return ["the head anchor (audit.head) is missing"] if newest is not None else []
    if head.get("hash") == "unreadable":
        return ["the head anchor (audit.head) is damaged"]
    seq = _int(head.get("seq"))
    if seq == -1 and head.get("hash") == GENESIS:
        anchored = None
    elif seq in by_seq:
        anchored = by_seq[seq]
        if anchored.get("hash") != head.get("hash"):
            return [f"record #{seq}, which the head anchors, was changed"]
    else:
        end = f"#{newest['seq']}" if newest else "no intact record"
        return [f"the newest record should be #{seq} but the log ends at {end} (records at the end were removed or changed)"]
    behind = (_int(newest["seq"]) if newest else -1) - (seq if anchored is not None else -1)
    if behind > 0:
        notes.append(f"The newest {behind} record(s) were written but the app stopped before anchoring them in audit.head (a crash or a full disk); the next job anchors them.")
    return []
