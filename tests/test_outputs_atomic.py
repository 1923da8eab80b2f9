"""Outputs are written whole or not at all, never through a planted link, and never over an
existing file unless asked (desktop/engines/atomic_write.py and every writer using it)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from desktop.cli import main as cli_main
from desktop.engines.atomic_write import OutputExistsError, OutputWriteError, write_atomic, write_text_atomic
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.speech.wav import read_wav, write_wav
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

VICTIM = b"the user's file, which no write may touch"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(VICTIM)
    return path


# -- the helper ------------------------------------------------------------------------------
def test_existing_file_is_kept_unless_overwrite_is_asked(tmp_path):
    out = tmp_path / "a.bin"
    write_atomic(out, b"first")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_atomic(out, b"second")
    assert out.read_bytes() == b"first"
    write_atomic(out, b"third", overwrite=True)
    assert out.read_bytes() == b"third" and leftovers(tmp_path) == []


def test_a_symlink_at_the_final_name_is_never_followed(tmp_path, victim):
    out = tmp_path / "out.wav"
    out.symlink_to(victim)
    with pytest.raises(OutputExistsError):
        write_atomic(out, b"new")
    assert victim.read_bytes() == VICTIM
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "elsewhere" / "created-through-the-link")
    with pytest.raises(OutputExistsError):
        write_atomic(dangling, b"new")
    assert not (tmp_path / "elsewhere" / "created-through-the-link").exists()
    write_atomic(out, b"new", overwrite=True)  # replaces the link itself
    assert not out.is_symlink() and out.read_bytes() == b"new" and victim.read_bytes() == VICTIM


def test_planted_temporary_names_are_not_followed(tmp_path, victim, monkeypatch):
    """The old writers used `<name>.part`; the helper's temp names are random and opened
    with O_EXCL|O_NOFOLLOW, so even a planted link under the very name it picks is skipped."""
    out = tmp_path / "clip.wav"
    (tmp_path / "clip.wav.part").symlink_to(victim)
    import desktop.engines.atomic_write as aw

    names = iter([tmp_path / ".clip.wav.planted.part", tmp_path / ".clip.wav.fresh.part"])
    (tmp_path / ".clip.wav.planted.part").symlink_to(victim)
    monkeypatch.setattr(aw, "temp_path_for", lambda path: next(names))
    write_atomic(out, b"audio")
    assert out.read_bytes() == b"audio" and victim.read_bytes() == VICTIM
    assert (tmp_path / ".clip.wav.planted.part").is_symlink()  # left as it was
    assert not (tmp_path / ".clip.wav.fresh.part").exists()


def test_two_concurrent_writers_of_one_path_exactly_one_wins(tmp_path):
    out = tmp_path / "same.png"
    both_writing = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def job(name: str) -> None:
        def write(fh):
            fh.write(name.encode() * 1000)
            both_writing.wait(timeout=10)  # both have a complete temp file before either publishes

        try:
            write_atomic(out, write)
            outcomes[name] = "wrote"
        except OutputExistsError:
            outcomes[name] = "refused"

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(outcomes.values()) == ["refused", "wrote"]
    winner = next(n for n, o in outcomes.items() if o == "wrote")
    assert out.read_bytes() == winner.encode() * 1000 and leftovers(tmp_path) == []


def test_a_failed_write_leaves_nothing_and_says_why_in_one_line(tmp_path):
    out = tmp_path / "full.wav"

    def disk_full(fh):
        fh.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputWriteError) as info:
        write_atomic(out, disk_full)
    assert str(info.value) == f"Could not write '{out}': the disk is full."
    assert isinstance(info.value, OSError)  # callers catching OSError still catch it
    assert not out.exists() and leftovers(tmp_path) == []
    with pytest.raises(RuntimeError):  # any other failure: the same clean-up
        write_atomic(out, lambda fh: (_ for _ in ()).throw(RuntimeError("encoder crashed")))
    assert not out.exists() and leftovers(tmp_path) == []


def test_text_and_wav_writers_use_it(tmp_path, victim):
    (tmp_path / "a.wav.part").symlink_to(victim)  # what the old WAV writer followed
    path = write_wav(tmp_path / "a.wav", np.zeros(160, np.float32), 16000, {"ICMT": "{}"})
    assert read_wav(path).samples.size == 160 and victim.read_bytes() == VICTIM
    with pytest.raises(OutputExistsError):
        write_wav(path, np.ones(10, np.float32), 16000)
    md = write_text_atomic(tmp_path / "chat.md", "# hello\n")
    assert md.read_text() == "# hello\n"


def test_stores_never_overwrite_a_clip_taken_in_the_same_second(tmp_path, monkeypatch):
    from desktop.outputs.clip_store import ClipStore

    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20260101-000000")
    store = ClipStore(tmp_path / "clips")
    first = store.add(np.zeros(100, np.float32), 16000, {"kind": "speech"}, "one")
    second = store.add(np.ones(100, np.float32) * 0.5, 16000, {"kind": "speech"}, "two")
    assert first.path.name == "clip-20260101-000000.wav" and second.path.name == "clip-20260101-000000-2.wav"
    assert read_wav(first.path).samples.max() == 0.0 and read_wav(second.path).samples.max() > 0.4


# -- the CLI's --out -------------------------------------------------------------------------
@pytest.fixture
def voice(tiny_voice, atelier_home):  # noqa: F811
    return import_path(tiny_voice, Library(), name="tiny-voice").name


def test_speak_out_refuses_an_existing_file_and_replaces_it_only_with_overwrite(voice, tmp_path, capsys):
    out = tmp_path / "out.wav"
    out.write_bytes(VICTIM)
    assert cli_main(["speak", "--model", voice, "--text", "hello", "--out", str(out), "--seed", "1"]) == 2  # a typed error, one line
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert out.read_bytes() == VICTIM
    assert cli_main(["speak", "--model", voice, "--text", "hello", "--out", str(out), "--seed", "1", "--overwrite"]) == 0
    assert read_wav(out).samples.size > 0


def test_speak_out_never_writes_through_planted_links(voice, tmp_path, victim):
    out = tmp_path / "out.wav"
    (tmp_path / "out.wav.part").symlink_to(victim)  # the temp name the old writer used
    assert cli_main(["speak", "--model", voice, "--text", "hello", "--out", str(out), "--seed", "1"]) == 0
    assert victim.read_bytes() == VICTIM and read_wav(out).samples.size > 0
    linked = tmp_path / "linked.wav"
    linked.symlink_to(victim)
    assert cli_main(["speak", "--model", voice, "--text", "hello", "--out", str(linked)]) == 2
    assert victim.read_bytes() == VICTIM


def test_speak_loses_the_race_with_a_clear_error(voice, tmp_path, monkeypatch, capsys):
    """Another job creates the file while this one synthesises: nothing is replaced."""
    import desktop.outputs.saving

    out = tmp_path / "race.wav"
    real_record = desktop.outputs.saving.speech_record

    def other_job_finishes_first(*args, **kwargs):
        out.write_bytes(VICTIM)
        return real_record(*args, **kwargs)

    monkeypatch.setattr(desktop.outputs.saving, "speech_record", other_job_finishes_first)
    assert cli_main(["speak", "--model", voice, "--text", "hello", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nothing was replaced" in err and "Traceback" not in err
    assert out.read_bytes() == VICTIM and leftovers(tmp_path) == []


@pytest.fixture
def painter(cache_dir):
    from tests.tiny_sd import tiny_sd_pack

    return import_path(tiny_sd_pack(cache_dir), Library(), name="tiny-sd").name


def test_two_image_jobs_to_one_path_do_not_both_write(painter, tmp_path, monkeypatch, capsys):
    """Both pass the up-front check; the one that finishes second is refused at the write."""
    import desktop.outputs.image_meta

    out = tmp_path / "b.png"
    real_record = desktop.outputs.image_meta.image_record
    first_job = {}

    def the_other_job_writes_first(*args, **kwargs):
        if not first_job:
            first_job["code"] = None  # the other job's own image_record call passes straight through
            first_job["code"] = cli_main(["image", "--model", painter, "--prompt", "a red apple", "--steps", "1", "--seed", "1", "--out", str(out)])
        return real_record(*args, **kwargs)

    monkeypatch.setattr(desktop.outputs.image_meta, "image_record", the_other_job_writes_first)
    code = cli_main(["image", "--model", painter, "--prompt", "a blue sea", "--steps", "1", "--seed", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert first_job["code"] == 0 and code == 2 and "nothing was replaced" in err
    from desktop.outputs.image_meta import read_settings

    assert read_settings(out)["settings"]["prompt"] == "a red apple"  # the first job's file, whole
    assert leftovers(tmp_path) == []
