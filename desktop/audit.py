"""A local, append-only, hash-chained audit log of every job.

One JSON line per job in ``<data dir>/audit.log``: time, job kind, pack name and hash,
the SHA-256 of the settings and of the output, the previous record's hash and this
record's own hash (SHA-256 of the canonical JSON of all other fields). ``audit.head``
holds the newest record's sequence number and hash, so removing the last records is
detected as well as editing, inserting or removing any earlier one.

What it proves: that the log was not edited *by accident or by someone unaware of
the chain*. Someone with write access who recomputes every hash can rewrite it all;
a local log cannot prevent that, and the viewer says so.

Studios call :func:`record_job` after each job (it never raises: a full disk must not
turn a finished image into an error); the CLI calls :func:`append`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from desktop.engines.errors import ProvenanceError
from desktop.engines.library import data_dir

log = logging.getLogger(__name__)

LOG_NAME = "audit.log"
HEAD_NAME = "audit.head"
GENESIS = "0" * 64
FIELDS = ("seq", "time", "kind", "pack", "pack_sha256", "settings_sha256", "output_sha256", "prev")
MAX_LINE = 64 * 1024


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
        from desktop.engines.packs import sha256_file

        return sha256_file(output)
    if isinstance(output, str):
        output = output.encode("utf-8")
    return hashlib.sha256(bytes(output)).hexdigest()


@contextmanager
def _locked(log_file: Path):
    """One writer at a time across processes (the app and the CLI may both append)."""
    lock_file = log_file.with_name(LOG_NAME + ".lock")
    with open(lock_file, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: msvcrt locks a byte range instead
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
        yield


def _read_head(log_file: Path) -> dict[str, Any] | None:
    head = _head_path(log_file)
    if not head.is_file():
        return None
    try:
        data = json.loads(head.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError):
        return {"seq": -1, "hash": "unreadable"}
    return data if isinstance(data, dict) else {"seq": -1, "hash": "unreadable"}


def _write_head(log_file: Path, seq: int, digest: str) -> None:
    head = _head_path(log_file)
    tmp = head.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"seq": seq, "hash": digest}))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, head)


def _last_record(log_file: Path) -> dict[str, Any] | None:
    """The newest complete record; a torn final line (a crash mid-write) is cut off."""
    if not log_file.is_file() or log_file.stat().st_size == 0:
        return None
    with open(log_file, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 2 * MAX_LINE))
        tail = fh.read()
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1  # keep everything up to the last full line
            fh.truncate(size - (len(tail) - cut))
            tail = tail[:cut]
        lines = tail.splitlines()
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise ProvenanceError(f"The audit log's last record is damaged; run `python main.py audit verify` ({log_file}).") from None


def append(kind: str, pack=None, settings: Any = None, output: bytes | str | Path | None = None, root: Path | None = None) -> dict[str, Any]:
    """Add one job to the log and return its record. ``pack`` is a Pack (or None)."""
    log_file = log_path(root)
    try:
        with _locked(log_file):
            last = _last_record(log_file)
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
            line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            _write_head(log_file, record["seq"], record["hash"])
    except OSError as exc:
        raise ProvenanceError(f"Could not write the audit log {log_file}: {exc.strerror or exc}.") from None
    return record


def record_job(kind: str, pack=None, settings: Any = None, output: bytes | str | Path | None = None) -> dict[str, Any] | None:
    """The one-line hook for studios: append, and log (never raise) on failure."""
    try:
        return append(kind, pack, settings, output)
    except Exception:  # noqa: BLE001 - auditing must never fail the user's job
        log.exception("could not append to the audit log")
        return None


def records(root: Path | None = None) -> Iterator[dict[str, Any]]:
    """Parsed records in order; lines that are not JSON objects are skipped."""
    log_file = log_path(root)
    if not log_file.is_file():
        return
    with open(log_file, encoding="utf-8", errors="replace") as fh:
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
    """Check every record's hash and link, and the head anchor."""
    log_file = log_path(root)
    head = _read_head(log_file)
    if not log_file.is_file():
        if head is not None:
            return AuditReport(False, 0, [f"the log file is missing but the head says {head.get('seq', -1) + 1} record(s) were written"])
        return AuditReport(True, 0, note="No jobs recorded yet.")
    problems: list[str] = []
    prev_hash, expected_seq, count, note = GENESIS, 0, 0, ""
    with open(log_file, "rb") as fh:
        raw_lines = fh.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    elif raw_lines:
        note = "The last write was interrupted (app stopped mid-record); that partial line is ignored."
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, RecursionError):
            problems.append(f"line {number} is not a valid record (edited?)")
            expected_seq += 1
            prev_hash = None
            continue
        count += 1
        seq = rec.get("seq")
        if seq != expected_seq:
            problems.append(f"line {number}: record #{seq} where #{expected_seq} was expected (records removed or inserted)")
        if prev_hash is not None and rec.get("prev") != prev_hash:
            problems.append(f"record #{seq}: link to the previous record is broken (a record before it was edited or removed)")
        if rec.get("hash") != record_hash(rec):
            problems.append(f"record #{seq}: contents do not match its hash (edited)")
        prev_hash = rec.get("hash")
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    if head is None:
        if count:
            problems.append("the head anchor (audit.head) is missing")
    elif head.get("seq") != expected_seq - 1 or head.get("hash") != prev_hash:
        problems.append(f"the newest record should be #{head.get('seq')} but the log ends at #{expected_seq - 1} (records at the end were removed or changed)")
    return AuditReport(not problems, count, problems, note)
