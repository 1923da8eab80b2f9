"""Voices are found by a registry keyed on the pack's architecture (as image pipelines
are); requests nest their SynthesisSettings as chat requests nest SamplingSettings."""

from __future__ import annotations

import inspect
from collections import Counter

import pytest

from desktop.engines.errors import PackFormatError, RequestError
from desktop.engines.packs.pack import load_pack
from desktop.engines.speech.engine import SpeechEngine, SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.voices import Voice, known_architectures, voice_class
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture


class _Pack:
    def __init__(self, architecture: str):
        self.name, self.architecture = "some voice", architecture


def test_each_architecture_has_its_registered_voice():
    from desktop.engines.speech.voices.hibari import HibariVoice
    from desktop.engines.speech.voices.vits import VitsVoice

    assert {"vits", "piper-vits", "hibari"} <= set(known_architectures())
    assert voice_class(_Pack("vits")) is voice_class(_Pack("piper-vits")) is VitsVoice
    assert voice_class(_Pack("hibari")) is HibariVoice


def test_an_unknown_architecture_names_the_voices_that_play():
    with pytest.raises(PackFormatError, match=r"'tacotron' voice; this app plays .*hibari.*vits"):
        voice_class(_Pack("tacotron"))


@pytest.mark.parametrize("arch", ["vits", "hibari"])
def test_every_registered_voice_implements_the_whole_protocol(arch):
    cls = voice_class(_Pack(arch))
    methods = [n for n, v in vars(Voice).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert {"speakable", "phoneme_ids", "synthesize_ids", "speaker_names"} <= set(methods)
    for name in methods:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}()"


def test_a_loaded_voice_satisfies_the_protocol_without_probing(tiny_voice):  # noqa: F811
    engine = SpeechEngine(load_pack(tiny_voice))
    try:
        voice = engine.voice
        assert isinstance(voice, Voice)
        # a character voice (MMS-TTS) filters by its alphabet; no tri-state probe with "a"
        assert voice.alphabet is not None and voice.alphabet("a") and not voice.alphabet("Ж")
        ids = voice.phoneme_ids("hello", Counter())
        assert voice.speakable(ids) == 5 and voice.speakable([]) == 0
        assert engine.speakers == voice.speaker_names()
    finally:
        engine.close()


def test_speech_request_nests_its_synthesis_settings():
    request = SpeechRequest("hello", SynthesisSettings(speed=1.5, seed=3))
    assert request.synthesis.speed == 1.5 and request.synthesis.seed == 3
    assert SpeechRequest("hello").synthesis == SynthesisSettings()
    with pytest.raises(RequestError, match="Speed must be between"):
        SpeechRequest("hello", SynthesisSettings(speed=9.0)).validate()
    with pytest.raises(RequestError, match="settings are missing or malformed"):
        SpeechRequest("hello", {"speed": 1.0}).validate()
