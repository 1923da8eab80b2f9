"""Numbers a pack's config declares (speakers, sample rate, phoneme maps, image sizes,
steps...) and thread counts are checked against sane bounds before anything is sized
from them: a clear typed error at once, not 15 s and gigabytes."""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path

import pytest

from desktop.engines.errors import ImportFormatError, PackFormatError, ProviderError
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture
from tests.test_cli import cli, env_with
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

pytest.importorskip("transformers")


def _copy_with_config(base: Path, dest: Path, change) -> Path:
    shutil.copytree(base, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    change(manifest["config"])
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def _open(pack: Path):
    from desktop.engines.base import open_engine
    from desktop.engines.packs.pack import load_pack

    return open_engine(load_pack(pack))


VOICE_CONFIGS = {
    "300 million speakers": lambda c: c.update(num_speakers=300_000_000),
    "speakers as text": lambda c: c.update(num_speakers="many"),
    "speakers 1e300": lambda c: c.update(num_speakers=1e300),
    "sample rate 10^9": lambda c: c.update(sample_rate=10**9),
    "sample rate 0": lambda c: c.update(sample_rate=0),
    "hop length 0": lambda c: c.update(hop_length=0),
    "hop length 10^12": lambda c: c.update(hop_length=10**12),
    "100k phonemes": lambda c: c.update(phoneme_id_map={f"p{i}": [i] for i in range(100_000)}),
    "a phoneme with 10k ids": lambda c: c["phoneme_id_map"].update(a=list(range(10_000))),
    "phoneme id 10^15": lambda c: c["phoneme_id_map"].update(a=[10**15]),
    "speaker id map 50k": lambda c: c.update(speaker_id_map={f"s{i}": i for i in range(50_000)}),
    "speaker id 10^12": lambda c: c.update(speaker_id_map={"x": 10**12}),
    "noise scale NaN": lambda c: c.setdefault("inference", {}).update(noise_scale=float("nan")),
    "length scale 10^9": lambda c: c.setdefault("inference", {}).update(length_scale=1e9),
}


@pytest.mark.parametrize("name", sorted(VOICE_CONFIGS))
def test_voice_config_out_of_bounds_is_refused_before_allocating(name, tiny_voice, tmp_path):  # noqa: F811
    pack = _copy_with_config(tiny_voice, tmp_path / "v", VOICE_CONFIGS[name])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(PackFormatError) as info:
        _open(pack).close()
    assert time.monotonic() - start < 5
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024 < 300
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


def test_cli_voice_with_300_million_speakers_is_one_line_and_fast(tiny_voice, tmp_path, atelier_home):  # noqa: F811
    pack = _copy_with_config(tiny_voice, tmp_path / "v", VOICE_CONFIGS["300 million speakers"])
    start = time.monotonic()
    r = cli("speak", "--model", str(pack), "--text", "hi", "--speaker", "nobody", "--out", str(tmp_path / "a.wav"), env=env_with(atelier_home))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "num_speakers" in r.stderr and time.monotonic() - start < 60


def test_unknown_speaker_message_lists_a_bounded_number_of_names(tiny_voice, tmp_path):  # noqa: F811
    from desktop.engines.errors import RequestError
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.engines.speech.synthesis import SynthesisSettings

    pack = _copy_with_config(tiny_voice, tmp_path / "v", lambda c: c.update(num_speakers=10_000))
    engine = _open(pack)
    try:
        with pytest.raises(RequestError) as info:
            list(engine.generate(SpeechRequest("hi", SynthesisSettings(speaker="nobody"))))
    finally:
        engine.close()
    assert "and 9980 more" in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize(
    "voice_json",
    [
        {"num_speakers": 300_000_000},
        {"hop_length": -5},
        {"inference": {"noise_scale": 1e9}},
        {"speaker_id_map": {f"s{i}": i for i in range(20_000)}},
    ],
    ids=["speakers", "hop", "noise", "speaker-map"],
)
def test_piper_voice_json_out_of_bounds_is_refused_at_import(voice_json, tmp_path):
    from desktop.engines.speech.importer import read_voice_json

    data = {"audio": {"sample_rate": 22050}, "phoneme_id_map": {"a": [1], "_": [0]}, "phoneme_type": "text", **voice_json}
    path = tmp_path / "v.onnx.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ImportFormatError, match="out of range|entries"):
        read_voice_json(path)


@pytest.fixture(scope="module")
def latent_pack(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.tiny_latent import tiny_latent_pack

    return tiny_latent_pack(tmp_path_factory.mktemp("latent") / "pack")


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(z_dim=10**12),
        lambda c: c.update(image_size=[10**9, 10**9]),
        lambda c: c.update(image_size="big"),
        lambda c: c.update(classes=[f"c{i}" for i in range(200_000)]),
    ],
    ids=["z_dim", "image_size", "image_size-text", "classes"],
)
def test_image_config_out_of_bounds_is_refused(change, latent_pack, tmp_path):
    pack = _copy_with_config(latent_pack, tmp_path / "img", change)
    with pytest.raises(PackFormatError):
        _open(pack).close()


def test_bounds_accept_every_real_config(latent_pack, tiny_voice):  # noqa: F811
    for pack in (latent_pack, tiny_voice):
        _open(pack).close()


# -- threads ---------------------------------------------------------------------------------
def test_runtime_settings_bound_threads_and_context():
    from desktop.engines.providers import MAX_THREADS, RuntimeSettings, max_threads

    assert max_threads() <= MAX_THREADS
    RuntimeSettings(threads=max_threads())
    for bad in (-1, max_threads() + 1, 500, 100_000, 2.5, "8"):
        with pytest.raises(ProviderError, match="thread count must be between 1 and"):
            RuntimeSettings(threads=bad)
    with pytest.raises(ProviderError, match="context window"):
        RuntimeSettings(context_window=10**12)


def test_threads_from_the_environment_are_bounded(monkeypatch):
    from desktop.engines.providers import RuntimeSettings

    monkeypatch.setenv("ATELIER_THREADS", "100000")
    with pytest.raises(ProviderError):
        RuntimeSettings.from_env()
    monkeypatch.setenv("ATELIER_THREADS", "lots")
    with pytest.raises(ProviderError, match="whole number"):
        RuntimeSettings.from_env()


@pytest.mark.parametrize("threads", ["500", "100000", "-3", "many"])
def test_cli_refuses_unbounded_threads_in_one_line(threads, atelier_home):
    start = time.monotonic()
    r = cli("--threads", threads, "text", "--prompt", "hi", env=env_with(atelier_home))
    assert r.returncode == 2 and r.stderr.startswith("error: argument --threads") and r.stderr.count("\n") == 1, r.stderr
    assert time.monotonic() - start < 60


def test_cli_refuses_threads_from_the_environment_in_one_line(tiny_voice, tmp_path, atelier_home):  # noqa: F811
    env = env_with(atelier_home)
    env["ATELIER_THREADS"] = "100000"
    r = cli("speak", "--model", str(tiny_voice), "--text", "hi", "--out", str(tmp_path / "a.wav"), env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: The thread count") and r.stderr.count("\n") == 1, r.stderr


def test_saved_settings_with_too_many_threads_fall_back_to_automatic(atelier_home):
    pytest.importorskip("PySide6")
    from desktop.engines.providers import max_threads
    from desktop.settings import Settings

    os.makedirs(atelier_home, exist_ok=True)
    (atelier_home / "settings.ini").write_text("[runtime]\nthreads=100000\n")
    store = Settings()
    assert store.load().threads == 0 and "at most" in store.reset_notice
    assert store.runtime().threads == 0 and max_threads() >= 1


@pytest.mark.parametrize("value", [10**15, "lots", -5, 2.5])
def test_text_context_length_out_of_bounds_is_refused(value, tiny_text_pack, tmp_path):  # noqa: F811
    pack = tmp_path / "t"
    shutil.copytree(tiny_text_pack, pack)
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["context_length"] = value
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackFormatError, match="context_length"):
        _open(pack).close()
