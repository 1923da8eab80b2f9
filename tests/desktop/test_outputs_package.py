"""desktop/outputs/: one save path per modality, no import cycle, and the studios save
where the Settings' default output folder says (the CLI keeps its --out)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.engines.speech.engine import SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.outputs import audit
from desktop.outputs.image_meta import read_settings
from desktop.outputs.provenance_wav import read_wav_provenance
from desktop.outputs.saving import JOB_CHAT, JOB_IMAGE, JOB_SPEECH, save_chat_result, save_image_result, save_speech_result
from desktop.outputs.watermark import detect_file
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.tiny_sd import tiny_sd_pack

ROOT = Path(__file__).resolve().parents[2]


def _desktop_imports(path: Path) -> set[str]:
    """Every ``desktop.*`` module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("desktop"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # "from desktop.outputs import audit"
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("desktop"))
    return found


def test_outputs_package_has_no_import_cycle():
    package = ROOT / "desktop" / "outputs"
    names = {f"desktop.outputs.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    graph = {n: _desktop_imports(package / f"{n.rsplit('.', 1)[1]}.py") & names for n in names}
    assert graph["desktop.outputs.provenance"] == set()  # the bottom: readers and writers import it

    def visit(node, trail):
        assert node not in trail, f"import cycle: {' -> '.join(trail + [node])}"
        for nxt in graph[node]:
            visit(nxt, trail + [node])

    for name in names:
        visit(name, [])


def test_the_window_never_imports_the_command_line():
    for path in (ROOT / "desktop" / "ui").rglob("*.py"):
        assert not any(m.startswith("desktop.commands") for m in _desktop_imports(path)), f"{path.name} imports desktop.commands"


class _Pack:
    name, pack_hash, precision = "tiny-pack", "5e" * 32, "fp32"


def test_each_modality_saves_file_record_watermark_and_audit_one_way(atelier_home, tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    png = save_image_result(image, {"prompt": "a shoe", "seed": 11}, _Pack(), "cpu", path=tmp_path / "a.png")
    record = read_settings(png)
    assert record["seed"] == 11 and record["settings"]["prompt"] == "a shoe" and record["provider"] == "cpu"
    assert detect_file(png).pack_prefix == _Pack.pack_hash[:10]
    stats = {"seed": 4, "scales": [0.667, 0.8], "speaker": None, "provider": "cpu"}
    clip = save_speech_result(np.zeros(1600, np.float32), 16000, _Pack(), SpeechRequest("hello", SynthesisSettings(speed=1.5)), stats, path=tmp_path / "a.wav")
    spoken = read_wav_provenance(clip.path)
    assert spoken["seed"] == 4 and spoken["settings"]["speed"] == 1.5 and spoken["settings"]["stopped"] is False
    save_chat_result("Paris.", _Pack(), {"temperature": 0.0}, seed=3)
    jobs = list(audit.records())
    assert [r["kind"] for r in jobs] == [JOB_IMAGE, JOB_SPEECH, JOB_CHAT] == ["image", "speech", "chat"]
    assert jobs[0]["output_sha256"] == audit.output_hash(png) and jobs[1]["output_sha256"] == audit.output_hash(clip.path)
    assert jobs[2]["output_sha256"] == audit.output_hash("Paris.") and audit.verify().ok
    with pytest.raises(TypeError):
        save_image_result(image, {}, _Pack(), path=tmp_path / "b.png", store=object())


def _choose_output_folder(settings: Settings, folder: Path) -> None:
    values = settings.load()
    values.output_dir = str(folder)
    settings.save(values)


@pytest.fixture
def painter_ctx(cache_dir, atelier_home):
    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    return AppContext(Settings(), Notifier(), lib)


def test_image_studio_saves_into_the_default_output_folder(qtbot, painter_ctx, tmp_path, atelier_home):
    from desktop.ui.image_studio import ImageStudio

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    _choose_output_folder(painter_ctx.settings, first)
    studio = ImageStudio(painter_ctx)
    qtbot.addWidget(studio)
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    c = studio.controls
    c.prompt.setPlainText("a red apple")
    c.width_box.setValue(32), c.height_box.setValue(32), c.steps.setValue(1)
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    (made,) = list((first / "images").glob("*.png"))
    assert read_settings(made)["settings"]["prompt"] == "a red apple"
    assert not list(atelier_home.rglob("*.png"))  # not in the data folder as well
    # the Settings page saves another folder: the next image goes there, the gallery lists it
    _choose_output_folder(painter_ctx.settings, second)
    painter_ctx.events.settings_changed.emit()
    assert studio.gallery.count() == 0
    with qtbot.waitSignal(studio.job_finished, timeout=60_000):
        studio.generate()
    (again,) = list((second / "images").glob("*.png"))
    assert [Path(p) for p in studio.gallery.paths()] == [again] and len(list((first / "images").glob("*.png"))) == 1
    assert [r["kind"] for r in audit.records()] == ["image", "image"]
    studio.shutdown()


@pytest.fixture
def voice_ctx(tiny_voice, atelier_home, monkeypatch):  # noqa: F811
    import desktop.audio as audio

    def no_portaudio():
        raise audio.PlaybackUnavailable("Audio playback needs the PortAudio library, which is not installed.")

    monkeypatch.setattr(audio, "_sounddevice", no_portaudio)
    lib = Library()
    import_path(tiny_voice, lib, name="tiny-voice")
    return AppContext(Settings(), Notifier(), lib)


def test_speech_studio_and_read_aloud_save_clips_into_the_default_output_folder(qtbot, voice_ctx, tmp_path):
    from desktop.ui.read_aloud import ReadAloud
    from desktop.ui.speech_studio import SpeechStudio

    chosen = tmp_path / "chosen"
    chosen.mkdir()
    _choose_output_folder(voice_ctx.settings, chosen)
    studio = SpeechStudio(voice_ctx)
    qtbot.addWidget(studio)
    qtbot.waitUntil(lambda: studio.runner.engine is not None, timeout=30_000)
    studio.text.setPlainText("hello there.")
    with qtbot.waitSignal(studio.clip_added, timeout=30_000) as added:
        studio.speak()
    assert added.args[0].path.parent == chosen / "clips"
    assert read_wav_provenance(added.args[0].path)["pack"] == "tiny-voice"
    studio.shutdown()
    reader = ReadAloud(voice_ctx)
    with qtbot.waitSignal(reader.clip_saved, timeout=30_000) as saved:
        assert reader.speak("read this aloud.")
    assert saved.args[0].path.parent == chosen / "clips"
    reader.shutdown()
    assert [r["kind"] for r in audit.records()] == ["speech", "speech"]


def test_old_trash_beside_the_output_folder_is_emptied_too(atelier_home, tmp_path):
    from desktop.outputs.trash import Trash
    from desktop.ui.main_window import _empty_old_trash

    chosen = tmp_path / "chosen"
    chosen.mkdir()
    _choose_output_folder(Settings(), chosen)
    old = Trash(chosen / "trash").move(_write(chosen / "images" / "old.png"))
    kept = Trash(atelier_home / "trash").move(_write(atelier_home / "images" / "new.png"))
    aged = old.path.rename(old.path.with_name(f"{1_000_000:.6f}--old.png"))  # deleted in 1970
    _empty_old_trash()
    assert not aged.exists() and kept.path.exists()  # the output folder's old item went, a fresh one stays


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path
