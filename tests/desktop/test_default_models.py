"""Which pack each studio and CLI command opens when the user has chosen none."""

from __future__ import annotations

from desktop.defaults import HIBARI_PACK, VOICE_PACK, default_model
from desktop.engines.packs.library import Library
from tests.desktop.app_helpers import data_pack


def test_the_piper_voice_is_the_speech_default_although_hibari_sorts_first():
    lib = Library()
    data_pack(lib.destination(HIBARI_PACK), name=HIBARI_PACK, modality="speech", validation={})
    assert default_model(lib, "speech") == HIBARI_PACK  # the only voice: it is the default
    data_pack(lib.destination(VOICE_PACK), name=VOICE_PACK, modality="speech", validation={})
    assert lib.first_of("speech") == HIBARI_PACK  # name order alone would pick hibari
    assert default_model(lib, "speech") == VOICE_PACK


def test_without_a_preferred_pack_the_first_installed_one_is_used():
    lib = Library()
    assert default_model(lib, "text") is None
    data_pack(lib.destination("zeta-llm"), name="zeta-llm")
    data_pack(lib.destination("alpha-llm"), name="alpha-llm")
    assert default_model(lib, "text") == "alpha-llm"
