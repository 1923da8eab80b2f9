"""The library never holds half a pack.

Imports build in a locked staging folder inside the library and rename into place; a
killed import leaves only a hidden work folder, removed at the next start; two imports of
one pack never destroy each other's work; ordinary failures are typed one-line errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from desktop.cli import INTERNAL_ERROR_EXIT, main
from desktop.engines.packs import importers
from desktop.engines.errors import ImportFormatError, PackError, ResourceError, UnsafePathError
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack, write_manifest
from desktop.engines.staging import ImportBusyError

ROOT = Path(__file__).resolve().parents[2]
# A real import in a child process, paused inside the copy once a few files are written
# (so the test can kill it at a known point) until ``go`` appears.
CHILD = textwrap.dedent(
    """
    import shutil, sys, time
    from pathlib import Path
    from desktop.engines.packs import importers
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    src, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    copied = []
    real = shutil.copyfile

    def copy(a, b, **kw):
        out = real(a, b, **kw)
        copied.append(b)
        if len(copied) == 3:
            ready.write_text("mid-copy")
            while not go.exists():
                time.sleep(0.01)
        return out

    importers.shutil.copyfile = copy
    print(import_path(src, Library()).name)
    """
)


def _pack(folder: Path, name: str = "staged", files: int = 8, size: int = 64 << 10) -> Path:
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"part-{i}.bin").write_bytes(os.urandom(size))
    write_manifest(folder, {"name": name, "modality": "image", "architecture": "test", "runtime": "onnxruntime", "precision": "fp32"})
    return folder


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{folder.name}/{p.relative_to(folder)}")
    return out


def _start_child(src: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(ready), str(go)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline, "the import child never reached the copy"
        time.sleep(0.02)
    return child, ready, go


def _visible(lib_root: Path) -> list[str]:
    return sorted(p.name for p in lib_root.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_an_import_killed_mid_copy_leaves_no_half_pack_and_is_cleaned_at_next_start(tmp_path, atelier_home, as_zip, capsys):
    src = _pack(tmp_path / "src" / "staged")
    child, _, _ = _start_child(_zip(src, tmp_path / "staged.zip") if as_zip else src, tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    lib_root = atelier_home / "models"
    leftovers = [p for p in lib_root.iterdir() if p.name.startswith(".staging-")]
    assert leftovers and _visible(lib_root) == []  # only the hidden work folder, never "staged"
    assert sum(f.stat().st_size for f in leftovers[0].rglob("*") if f.is_file()) > 0
    lib = Library()  # the next start
    assert not any(p.exists() for p in leftovers) and lib.entries() == []
    assert main(["models", "list"]) == 0 and "staged" not in capsys.readouterr().out
    assert import_path(src, lib).name == "staged"  # a re-import is not refused
    assert load_pack(lib.find("staged")).name == "staged"


def test_a_running_import_is_not_cleaned_by_another_start(tmp_path, atelier_home):
    src = _pack(tmp_path / "src" / "staged")
    child, _, go = _start_child(src, tmp_path)
    try:
        Library()  # another process starting while the import runs
        assert [p for p in (atelier_home / "models").iterdir() if p.name.startswith(".staging-")]
    finally:
        go.write_text("go")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.strip() == "staged" and load_pack(Library().find("staged")).name == "staged"


def test_a_second_import_of_the_same_pack_never_deletes_the_first(tmp_path, atelier_home):
    src = _pack(tmp_path / "src" / "staged")
    child, _, go = _start_child(src, tmp_path)
    try:
        with pytest.raises(ImportBusyError, match="already being imported"):
            import_path(src, Library())
    finally:
        go.write_text("go")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    with pytest.raises(PackError, match="already installed"):
        import_path(src, Library())
    assert load_pack(Library().find("staged")).name == "staged"  # the winner's pack is whole


def test_a_loser_at_the_final_rename_leaves_the_winner_alone(tmp_path, monkeypatch):
    src = _pack(tmp_path / "src" / "staged")
    lib = Library()
    winner = lib.destination("staged")
    real = importers.shutil.copyfile

    def copy_while_someone_else_installs(a, b, **kw):
        if not winner.exists():  # another writer (without our lock) finishes first
            winner.mkdir()
            (winner / "theirs.txt").write_text("not ours to delete")
        return real(a, b, **kw)

    monkeypatch.setattr(importers.shutil, "copyfile", copy_while_someone_else_installs)
    with pytest.raises(PackError, match="already installed|holds a broken pack"):
        import_path(src, lib)
    assert (winner / "theirs.txt").read_text() == "not ours to delete"
    assert not [p for p in lib.root.iterdir() if p.name.startswith(".staging-")]


def test_a_pack_with_a_missing_file_is_listed_as_broken_and_can_be_removed(tmp_path, capsys):
    lib = Library()
    import_path(_pack(tmp_path / "src" / "staged"), lib)
    (lib.find("staged") / "part-3.bin").unlink()
    entry = Library().entries()[0]
    assert entry.manifest is None and "part-3.bin" in entry.problem
    assert main(["models", "list"]) == 0
    assert "BROKEN" in capsys.readouterr().out
    assert main(["models", "remove", entry.name]) == 0
    assert Library().entries() == []


# -- ordinary failures: typed, one line, nothing left behind --------------------------------
def _nothing_left(lib_root: Path) -> None:
    assert [p.name for p in lib_root.iterdir()] == []


def test_zip_holding_a_file_and_a_folder_of_one_name_is_refused(tmp_path):
    path = tmp_path / "both.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("p/X", b"file")
        zf.writestr("p/X/inner", b"file below a file")
    with pytest.raises(UnsafePathError, match="both as a file and as a folder"):
        import_path(path, Library())
    _nothing_left(Library().root)


def test_a_700_level_deep_folder_is_refused(tmp_path, capsys):
    deep = tmp_path / "deep"
    leaf = deep.joinpath(*["d"] * 700)
    leaf.mkdir(parents=True)
    (deep / "genai_config.json").write_text("{}")
    (deep / "tokenizer.json").write_text("{}")
    (leaf / "x.bin").write_bytes(b"x")
    with pytest.raises(ImportFormatError, match="deep"):
        import_path(deep, Library())
    _nothing_left(Library().root)
    code = main(["models", "import", str(deep)])
    assert code not in (0, INTERNAL_ERROR_EXIT) and capsys.readouterr().err.startswith("error: ")


def test_a_700_level_deep_zip_is_refused(tmp_path):
    path = tmp_path / "deep.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("/".join(["d"] * 700) + "/x.bin", b"x")
    with pytest.raises(ImportFormatError, match="deep"):
        import_path(path, Library())
    _nothing_left(Library().root)


def _foreign(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("genai_config.json", "tokenizer.json"):
        (folder / name).write_text("{}")
    for i in range(4):
        (folder / f"part-{i}.bin").write_bytes(os.urandom(4096))
    return folder


@pytest.mark.parametrize("kind, words", [("pack", "missing"), ("foreign", "changed while it was being imported")])
def test_a_source_that_vanishes_mid_import_is_a_typed_error(tmp_path, monkeypatch, kind, words):
    src = _pack(tmp_path / "src" / "staged") if kind == "pack" else _foreign(tmp_path / "src" / "foreign")
    real = importers.shutil.copyfile

    def copy_then_lose_the_rest(a, b, **kw):
        out = real(a, b, **kw)
        for f in src.glob("part-*.bin"):
            f.unlink()
        return out

    monkeypatch.setattr(importers.shutil, "copyfile", copy_then_lose_the_rest)
    with pytest.raises(PackError, match=words):
        import_path(src, Library())
    _nothing_left(Library().root)


@pytest.fixture()
def tiny_mount(tmp_path):
    """A 1 MB tmpfs (real ENOSPC / EROFS, even for root); skipped where mounting is not allowed."""
    point = tmp_path / "mnt"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_disk_full_is_a_typed_error_and_leaves_nothing(tmp_path, tiny_mount):
    src = _pack(tmp_path / "src" / "big", name="big", files=4, size=512 << 10)  # 2 MB into 1 MB
    lib = Library(tiny_mount / "models")
    with pytest.raises(ResourceError, match="disk is full"):
        import_path(src, lib)
    _nothing_left(lib.root)
    zipped = _zip(src, tmp_path / "big.zip")
    with pytest.raises(ResourceError, match="disk"):
        import_path(zipped, lib)
    _nothing_left(lib.root)


def test_a_read_only_library_is_a_typed_error(tmp_path, tiny_mount, monkeypatch, capsys):
    lib_root = tiny_mount / "models"
    lib_root.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_mount)], check=True)
    src = _pack(tmp_path / "src" / "staged")
    with pytest.raises(PackError, match="read-only|not writable"):
        import_path(src, Library(lib_root))
    monkeypatch.setenv("ATELIER_HOME", str(tiny_mount))
    code = main(["models", "import", str(src)])
    err = capsys.readouterr().err
    assert code not in (0, INTERNAL_ERROR_EXIT) and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_unlocked_work_folders_are_removed_once_stale_and_kept_while_fresh(atelier_home):
    from desktop.engines.staging import STALE_UNLOCKED_S

    lib_root = Library().root
    old, fresh = lib_root / ".export-killed", lib_root / ".export-running"
    for folder in (old, fresh):
        (folder / "fp32").mkdir(parents=True)
        (folder / "fp32" / "model.onnx").write_bytes(b"x" * 1000)
    stale = time.time() - STALE_UNLOCKED_S - 60
    for p in (old / "fp32" / "model.onnx", old / "fp32", old):
        os.utime(p, (stale, stale))
    Library()
    assert not old.exists() and fresh.is_dir()
