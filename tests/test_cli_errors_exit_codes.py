"""Ordinary failures - a full disk, a read-only folder, ``--out`` being a folder, invalid
UTF-8 on stdin, a missing input - are typed, one line on stderr, with their own exit code
(sysexits.h); exit 70 stays for real bugs. Real ``main.py`` subprocesses throughout."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.engines.errors import DiskFullError, FileSystemError, InputFileError, OutputFileError
from desktop.engines.os_errors import classify_os_error
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.test_cli import ROOT, env_with

EX_DATAERR, EX_NOINPUT, EX_CANTCREAT, EX_IOERR = 65, 66, 73, 74


def run(*args, env, stdin: bytes | None = None, preexec=None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, env=env, input=stdin, timeout=300, preexec_fn=preexec)
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def assert_one_line(r, code: int, *words: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.stderr and "This is a bug" not in r.stderr, r.stderr
    assert all(w.lower() in errors[0].lower() for w in words), errors[0]


@pytest.fixture
def voice(tiny_voice, atelier_home):  # noqa: F811
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    import_path(tiny_voice, Library(), name="tiny-voice")
    return "tiny-voice"


# -- stdin that is not UTF-8 ------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [("text", "--prompt", "-"), ("speak", "--text", "-", "--out", "{tmp}/a.wav"), ("image", "--prompt", "-", "--out", "{tmp}/a.png")],
    ids=["text", "speak", "image"],
)
@pytest.mark.parametrize("data", [b"\xff\xfehello", b"caf\xe9", b"ok \xed\xa0\x80 surrogate"], ids=["bom16", "latin1", "surrogate"])
def test_invalid_utf8_on_stdin_is_a_data_error(args, data, tmp_path, atelier_home):
    r = run(*(a.format(tmp=tmp_path) for a in args), env=env_with(atelier_home), stdin=data)
    assert_one_line(r, EX_DATAERR, "not UTF-8")


def test_utf8_with_a_bom_on_stdin_is_fine(voice, tmp_path, atelier_home):
    r = run("speak", "--model", voice, "--text", "-", "--out", str(tmp_path / "a.wav"), env=env_with(atelier_home), stdin="\ufeffhello".encode())
    assert r.returncode == 0, r.stderr


# -- outputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["speak", "image"])
def test_out_being_a_folder_cannot_be_created(kind, tmp_path, atelier_home):
    folder = tmp_path / ("x.wav" if kind == "speak" else "x.png")
    folder.mkdir()
    flag = "--text" if kind == "speak" else "--prompt"
    for out in (tmp_path, folder):
        r = run(kind, flag, "hi", "--out", str(out), env=env_with(atelier_home))
        assert_one_line(r, EX_CANTCREAT, "is a folder")


@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str):
    """A real read-only or tiny file system; needs root (CI containers run as root)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_read_only_output_folder(voice, tmp_path, atelier_home):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        if ro is None:  # not root: a folder without write permission says the same
            ro = tmp_path / "ro"
            ro.chmod(0o555)
        r = run("speak", "--model", voice, "--text", "hi", "--out", str(ro / "a.wav"), env=env_with(atelier_home))
        assert_one_line(r, EX_CANTCREAT, "cannot write")


def test_full_disk_is_an_io_error_not_a_bug(voice, tmp_path, atelier_home):
    with mounted_tmpfs(tmp_path / "full", "size=8k") as full:
        if full is None:
            pytest.skip("mounting a tiny file system needs root; the file-size-limit test covers the write path")
        with contextlib.suppress(OSError), open(full / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 1024)
                fh.flush()
        r = run("speak", "--model", voice, "--text", "hello there, a long enough sentence", "--out", str(full / "a.wav"), env=env_with(atelier_home))
        assert_one_line(r, EX_IOERR, "disk is full")
        assert not (full / "a.wav").exists()


def test_file_size_limit_is_an_io_error_not_a_bug(voice, tmp_path, atelier_home):
    def limit():  # writes past 4 KB fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = run("speak", "--model", voice, "--text", "hello there, a long enough sentence", "--out", str(tmp_path / "a.wav"), env=env_with(atelier_home), preexec=limit)
    assert_one_line(r, EX_IOERR, "too large")


# -- inputs -----------------------------------------------------------------------------------
def test_missing_or_wrong_inputs_are_no_input_errors(tmp_path, atelier_home):
    env = env_with(atelier_home)
    assert_one_line(run("verify", str(tmp_path / "missing.png"), env=env), EX_NOINPUT, "no such file")
    assert_one_line(run("verify", str(tmp_path), env=env), EX_NOINPUT, "not a regular file")
    assert_one_line(run("image", "--prompt", "x", "--out", str(tmp_path / "a.png"), "--init", str(tmp_path / "missing.png"), env=env), EX_NOINPUT, "no such")
    assert_one_line(run("image", "--prompt", "x", "--out", str(tmp_path / "a.png"), "--init", str(tmp_path), env=env), EX_NOINPUT, "folder")


# -- the classifier, errno by errno -----------------------------------------------------------
@pytest.mark.parametrize(
    "code, writing, expected, words",
    [
        (errno.ENOSPC, True, DiskFullError, "disk is full"),
        (getattr(errno, "EDQUOT", errno.ENOSPC), True, DiskFullError, "disk is full"),
        (errno.EFBIG, True, DiskFullError, "too large"),
        (errno.EROFS, True, OutputFileError, "read-only"),
        (errno.EACCES, True, OutputFileError, "permission denied"),
        (errno.EACCES, False, InputFileError, "permission denied"),
        (errno.EPERM, None, OutputFileError, "permission denied"),
        (errno.EISDIR, True, OutputFileError, "is a folder"),
        (errno.EISDIR, False, InputFileError, "is a folder"),
        (errno.ENOENT, False, InputFileError, "no such file"),
        (errno.ENOTDIR, None, InputFileError, "no such file"),
        (errno.ENAMETOOLONG, True, OutputFileError, "too long"),
        (errno.EIO, None, FileSystemError, "input/output error"),
        (errno.EMFILE, None, FileSystemError, "too many open files"),
    ],
)
def test_every_errno_gets_a_typed_one_line_error(code, writing, expected, words):
    exc = classify_os_error(OSError(code, os.strerror(code), "/data/out\x1b[2J.wav"), writing=writing)
    assert type(exc) is expected and words in str(exc).lower() and "\n" not in str(exc)
    assert exc.exit_code in (EX_NOINPUT, EX_CANTCREAT, EX_IOERR)


def test_a_typed_error_that_is_also_an_os_error_takes_its_errno_exit_code():
    from desktop.cli import exit_code_of
    from desktop.engines.errors import AtelierError, RequestError

    class WriteFailed(AtelierError, OSError):  # the shape of a write helper's own error
        pass

    assert exit_code_of(WriteFailed(errno.ENOSPC, "Could not write 'a.wav': the disk is full.")) == EX_IOERR
    assert exit_code_of(WriteFailed(errno.EROFS, "Could not write 'a.wav': read-only.")) == EX_CANTCREAT
    assert exit_code_of(RequestError("bad request")) == 2
    assert exit_code_of(InputFileError("missing")) == EX_NOINPUT
