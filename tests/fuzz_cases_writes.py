"""Fuzz cases for writes and the audit log (picked up by tests/fuzz_runner.py).

Writers (WAV, PNG, GIF/WebP, Markdown, the stores) against hostile destinations: an
existing file, a planted symlink at the final or the old temporary name, a dangling link,
a folder, a missing or read-only folder, odd names, concurrent writers. The audit log
against damage: torn, NUL-filled, garbled, edited, reordered or huge lines, a lagging or
broken head, planted links - and after each, a real CLI text job must still be recorded
and ``audit verify`` must answer in one line. A case raises :class:`DataLoss` when a file
the user had is changed or a job goes unrecorded; the runner also checks every
pre-existing file under ``out``, ``inputs`` and ``canary``.
"""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from tests.fuzz_cases import Action, Case, _cli
from tests.fuzz_runner import DataLoss

USER_FILE = b"a file the user made; no write may change it"


# -- writers -------------------------------------------------------------------------------
def _record(kind: str = "image") -> dict:
    return {"generator": "Atelier", "kind": kind, "pack": "fuzz", "pack_sha256": "ab" * 32, "settings": {"seed": 1}, "seed": 1}


def _write_wav(path: Path, overwrite: bool = False):
    from desktop.outputs.provenance_wav import save_wav

    return save_wav(path, np.zeros(800, np.float32), 16000, _record("speech"), "fuzz", overwrite=overwrite)


def _write_png(path: Path, overwrite: bool = False):
    from desktop.outputs.provenance_png import save_png

    return save_png(path, np.full((16, 16, 3), 120, np.uint8), _record(), overwrite=overwrite)


def _write_gif(path: Path, overwrite: bool = False):
    from desktop.outputs.image_meta import save_animation

    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 255)]
    return save_animation(path.with_suffix(".gif"), frames, _record(), overwrite=overwrite)


def _write_webp(path: Path, overwrite: bool = False):
    from desktop.outputs.image_meta import save_animation

    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 255)]
    return save_animation(path.with_suffix(".webp"), frames, _record(), overwrite=overwrite)


def _write_md(path: Path, overwrite: bool = False):
    from desktop.engines.atomic_write import write_text_atomic

    return write_text_atomic(path.with_suffix(".md"), "# chat\n\nhello\n", overwrite=overwrite)


WRITERS: dict[str, tuple[str, Callable]] = {
    "WAV": (".wav", _write_wav),
    "PNG": (".png", _write_png),
    "GIF": (".gif", _write_gif),
    "WebP": (".webp", _write_webp),
    "Markdown": (".md", _write_md),
}


def _user_file(root: Path) -> Path:
    target = root / "canary" / "user-file.txt"
    target.write_bytes(USER_FILE)
    return target


def _check_user_file(root: Path) -> None:
    target = root / "canary" / "user-file.txt"
    if not target.is_file() or target.read_bytes() != USER_FILE:
        raise DataLoss("a write went through a planted link into the user's file")


def _hazards(suffix: str) -> dict[str, Callable[[Path], tuple[Path, bool]]]:
    """name -> make(root) giving (destination, overwrite)."""

    def existing(root):
        p = root / "out" / f"taken{suffix}"
        p.write_bytes(USER_FILE)  # the runner's data-loss check watches it
        return p, False

    def link_final(root, overwrite=False):
        p = root / "out" / f"link{suffix}"
        p.symlink_to(_user_file(root))
        return p, overwrite

    def link_part(root):
        p = root / "out" / f"clip{suffix}"
        (root / "out" / f"clip{suffix}.part").symlink_to(_user_file(root))  # the old temp name
        return p, False

    def dangling(root):
        p = root / "out" / f"dangling{suffix}"
        p.symlink_to(root / "canary" / "created-through-link")
        return p, False

    def folder(root, overwrite=False):
        p = root / "out" / f"folder{suffix}"
        p.mkdir()
        return p, overwrite

    def missing_folder(root):
        return root / "out" / "no-such-folder" / f"x{suffix}", False

    def read_only(root):
        d = root / "out" / "read-only"
        d.mkdir()
        d.chmod(0o500)
        return d / f"x{suffix}", False

    def fresh(root):
        return root / "out" / f"fresh{suffix}", False

    def odd_name(root):
        return root / "out" / f"  spaces, ünïcödé & 'quotes' {suffix}", False

    def leading_dash(root):
        return root / "out" / f"-rf{suffix}", False

    return {
        "fresh file": fresh,
        "existing file, no overwrite": existing,
        "symlink at the final name": link_final,
        "symlink at the final name, overwrite": lambda r: link_final(r, True),
        "planted .part symlink": link_part,
        "dangling symlink at the final name": dangling,
        "a folder at the final name": folder,
        "a folder at the final name, overwrite": lambda r: folder(r, True),
        "missing folder": missing_folder,
        "read-only folder": read_only,
        "odd characters in the name": odd_name,
        "name starting with a dash": leading_dash,
    }


def writer_cases() -> list[Case]:
    cases = []
    for label, (suffix, write) in WRITERS.items():
        for hazard, make in _hazards(suffix).items():

            def build(root: Path, base: Path, make=make, write=write) -> Action:
                dest, overwrite = make(root)

                def run():
                    try:
                        write(dest, overwrite=overwrite)
                    finally:
                        if (root / "canary" / "user-file.txt").exists():
                            _check_user_file(root)
                        if (root / "canary" / "created-through-link").exists():
                            raise DataLoss("a write followed a dangling link out of the output folder")

                return run

            cases.append(Case(f"write {label}: {hazard}", "writes", build))
        cases.append(Case(f"write {label}: two writers, one path", "writes", lambda root, base, w=write, s=suffix: _race(root, w, s)))
    return cases


def _race(root: Path, write: Callable, suffix: str) -> Action:
    def run():
        from desktop.engines.atomic_write import OutputExistsError

        dest = root / "out" / f"race{suffix}"
        outcomes: list[str] = []
        start = threading.Barrier(4)

        def one():
            start.wait(timeout=10)
            try:
                write(dest)
                outcomes.append("wrote")
            except OutputExistsError:
                outcomes.append("refused")

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        if outcomes.count("wrote") != 1 or len(outcomes) != 4:
            raise DataLoss(f"four writers of one path: {outcomes} (exactly one may write)")

    return run


def store_cases() -> list[Case]:
    def clips(root: Path, base: Path) -> Action:
        def run():
            import time as _time

            from desktop.outputs.clip_store import ClipStore

            store = ClipStore(root / "home" / "clips")
            real = _time.strftime
            _time.strftime = lambda fmt, *a: "20260101-000000"  # every clip in the same second
            try:
                made = [store.add(np.full(100, i / 10, np.float32), 16000, _record("speech"), str(i)).path for i in range(6)]
            finally:
                _time.strftime = real
            if len(set(made)) != 6:
                raise DataLoss(f"clips written over each other: {made}")

        return run

    def images(root: Path, base: Path) -> Action:
        def run():
            from desktop.outputs.image_store import ImageStore

            class Pack:
                name, pack_hash, architecture, precision = "fuzz", "ab" * 32, "x", "fp32"

            store = ImageStore(root / "home" / "images")
            made = [store.add(np.full((8, 8, 3), i, np.uint8), Pack(), {"seed": 1}) for i in range(4)]
            if len(set(made)) != 4:
                raise DataLoss(f"images written over each other: {made}")

        return run

    return [Case("store: six clips in one second", "writes", clips), Case("store: four images, one seed, one second", "writes", images)]


# -- the audit log ---------------------------------------------------------------------------
def _seed_log(root: Path, n: int = 4) -> Path:
    from desktop.outputs import audit

    for i in range(n):
        audit.append("text", None, {"i": i}, f"job {i}", root=root / "home")
    return root / "home" / "audit.log"


def _job_is_recorded(root: Path, base: Path) -> None:
    """A real CLI text job; it must land in the log, and verify must answer in one line."""
    from desktop.outputs import audit

    before = sum(1 for _ in audit.records())
    _cli("text", "--model", str(base), "--prompt", "hi", "--max-tokens", "2", "--seed", "1")()
    if sum(1 for _ in audit.records()) != before + 1:
        raise DataLoss("a job after the damage was not recorded in the audit log")
    report = audit.verify()
    if "\n" in report.message() or "Traceback" in report.message():
        raise AssertionError(f"audit verify is not one line: {report.message()[:200]}")


def audit_cases(rng: random.Random) -> list[Case]:
    cases = []

    def add(name: str, damage: Callable[[Path, Path], None]):
        def build(root: Path, base: Path) -> Action:
            log = _seed_log(root)
            damage(root, log)

            def run():
                _job_is_recorded(root, base)
                if (root / "canary" / "user-file.txt").exists():
                    _check_user_file(root)

            return run

        cases.append(Case(f"audit: {name}", "audit", build))

    def append_bytes(data: bytes):
        return lambda root, log: log.open("ab").write(data)

    head = lambda log: log.with_name("audit.head")  # noqa: E731
    add("torn last line", append_bytes(b'{"seq": 4, "kind": "te'))
    add("NUL-filled tail (power cut)", append_bytes(b"\0" * 300))
    add("garbage last line", append_bytes(b"{not json}\n"))
    add("invalid UTF-8 line", append_bytes(b"\xff\xfe\xfd\n"))
    add("empty lines", append_bytes(b"\n\n\n"))
    add("CRLF line", append_bytes(b'{"seq": 9}\r\n'))
    add("a JSON list line", append_bytes(b"[1, 2, 3]\n"))
    add("deeply nested line", append_bytes(b"[" * 50_000 + b"]" * 50_000 + b"\n"))
    add("a 1 MB line", append_bytes(b'{"pad": "' + b"x" * (1 << 20) + b'"}\n'))
    add("a 1 MB line without newline", append_bytes(b"y" * (1 << 20)))
    add("seq a string", append_bytes(json.dumps({"seq": "4", "hash": "x"}).encode() + b"\n"))
    add("seq 2^70", append_bytes(json.dumps({"seq": 2**70, "hash": "x"}).encode() + b"\n"))

    def edit_last(root, log):
        lines = log.read_bytes().splitlines(keepends=True)
        rec = json.loads(lines[-1])
        rec["kind"] = "edited"
        log.write_bytes(b"".join(lines[:-1]) + json.dumps(rec).encode() + b"\n")

    add("last record edited", edit_last)
    add("last two records swapped", lambda root, log: log.write_bytes(b"".join((lambda l: l[:-2] + [l[-1], l[-2]])(log.read_bytes().splitlines(keepends=True)))))
    add("last record removed", lambda root, log: log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1])))
    add("log emptied", lambda root, log: log.write_bytes(b""))
    add("log removed", lambda root, log: log.unlink())
    add("head removed", lambda root, log: head(log).unlink())
    add("head garbage", lambda root, log: head(log).write_bytes(b"\x00garbage"))
    add("head lags one record", lambda root, log: head(log).write_text(json.dumps({"seq": 2, "hash": json.loads(log.read_bytes().splitlines()[2])["hash"]})))
    add("head ahead of the log", lambda root, log: head(log).write_text(json.dumps({"seq": 99, "hash": "0" * 64})))
    add("head a folder", lambda root, log: (head(log).unlink(), head(log).mkdir()))
    for k in range(8):

        def flips(root, log, k=k):
            data = bytearray(log.read_bytes())
            r = random.Random(100 + k)
            for _ in range(1 + k):
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
            log.write_bytes(bytes(data))

        add(f"{1 + k} random bit flip(s)", flips)

    def link(name: str):
        def damage(root, log):
            target = log.with_name(name)
            target.unlink(missing_ok=True)
            target.symlink_to(_user_file(root))

        return damage

    for name in ("audit.log", "audit.head", "audit.log.lock"):
        # a planted link is refused (typed error) or replaced; never written through
        cases.append(Case(f"audit: {name} is a symlink to a user file", "audit", _link_case(link(name))))
    return cases


def _link_case(damage) -> Callable[[Path, Path], Action]:
    def build(root: Path, base: Path) -> Action:
        from desktop.outputs import audit

        damage(root, _seed_log(root))

        def run():
            try:
                audit.append("text", None, {}, "x", root=root / "home")
            finally:
                _check_user_file(root)
            audit.verify(root / "home")

        return run

    return build


def all_cases(seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    return writer_cases() + store_cases() + audit_cases(rng)
