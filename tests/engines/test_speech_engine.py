"""Speech engine on a tiny random VITS exported by our exporter (MMS-TTS shape)."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.engines.errors import RequestError
from desktop.engines.events import AudioChunk, Done, Notice
from desktop.engines.packs.pack import load_pack
from desktop.engines.speech.engine import MAX_TEXT_CHARS, SpeechEngine, SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.sentences import split_sentences
from tests.speech_helpers import tiny_voice, tiny_voice_2spk  # noqa: F401 - fixtures

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def engine(tiny_voice):  # noqa: F811
    eng = SpeechEngine(load_pack(tiny_voice))
    yield eng
    eng.close()


def run(engine, request):
    events = list(engine.generate(request))
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    notices = [e.message for e in events if isinstance(e, Notice)]
    done = events[-1]
    assert isinstance(done, Done)
    return chunks, notices, done


def test_audio_length_is_what_the_durations_imply(engine, tiny_voice):  # noqa: F811
    """With the noise at zero, PyTorch's predicted lengths and the graph's durations both
    give exactly the number of samples the engine returns."""
    import onnxruntime as ort
    import torch
    from transformers import VitsModel

    text = "the quick brown fox"
    chunks, _, _ = run(engine, SpeechRequest(text, SynthesisSettings(noise_scale=0.0, noise_w=0.0)))
    assert len(chunks) == 1
    ids = engine.voice.phoneme_ids(text, __import__("collections").Counter())
    model = VitsModel.from_pretrained(str(tiny_voice.parent / "hf-1")).eval()
    model.noise_scale = model.noise_scale_duration = 0.0
    with torch.inference_mode():
        expected = int(model(input_ids=torch.tensor([ids])).sequence_lengths[0])
    session = ort.InferenceSession(str(tiny_voice / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {"input": np.asarray([ids]), "input_lengths": np.asarray([len(ids)]), "scales": np.array([0, 1, 0], np.float32)}
    feed.update({i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs() if i.name.startswith("noise_")})
    durations = session.run(["durations"], feed)[0]
    hop = load_pack(tiny_voice).config["hop_length"]
    assert chunks[0].samples.size == expected == int(durations.sum()) * hop
    assert chunks[0].sample_rate == 16000


def test_one_chunk_per_sentence_with_progress_offsets(engine):
    text = "First sentence here. Second one follows! And a third?"
    chunks, _, done = run(engine, SpeechRequest(text, SynthesisSettings(seed=1)))
    assert [c.text for c in chunks] == [s.text for s in split_sentences(text)] and len(chunks) == 3
    ends = [c.char_end for c in chunks]
    assert ends == sorted(ends) and ends[-1] == len(text)
    assert done.stats["sentences"] == 3 and done.stats["audio_s"] > 0 and done.stats["rtf"] > 0 and done.stats["first_chunk_s"] > 0


def test_same_seed_same_samples_other_seed_differs(engine):
    a = np.concatenate([c.samples for c in run(engine, SpeechRequest("a seeded sentence", SynthesisSettings(seed=7)))[0]])
    b = np.concatenate([c.samples for c in run(engine, SpeechRequest("a seeded sentence", SynthesisSettings(seed=7)))[0]])
    c = np.concatenate([c.samples for c in run(engine, SpeechRequest("a seeded sentence", SynthesisSettings(seed=8)))[0]])
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_speed_changes_length(engine):
    slow = run(engine, SpeechRequest("speed test sentence", SynthesisSettings(speed=0.5, noise_w=0.0, noise_scale=0.0)))[0][0].samples.size
    fast = run(engine, SpeechRequest("speed test sentence", SynthesisSettings(speed=2.0, noise_w=0.0, noise_scale=0.0)))[0][0].samples.size
    assert slow > 2 * fast


def test_multi_speaker_voices_pick_a_speaker(tiny_voice_2spk):  # noqa: F811
    eng = SpeechEngine(load_pack(tiny_voice_2spk))
    try:
        assert len(eng.speakers) == 2
        a = run(eng, SpeechRequest("hello there", SynthesisSettings(speaker=0, seed=3)))[0][0].samples
        b = run(eng, SpeechRequest("hello there", SynthesisSettings(speaker=1, seed=3)))[0][0].samples
        assert a.shape != b.shape or not np.allclose(a, b)
        with pytest.raises(RequestError, match="Speaker 5 does not exist"):
            run(eng, SpeechRequest("hello there", SynthesisSettings(speaker=5)))
    finally:
        eng.close()


# -- bad input: one test each -----------------------------------------------------------


def test_empty_text_is_refused(engine):
    for text in ("", "   \n\t "):
        with pytest.raises(RequestError, match="Nothing to say"):
            run(engine, SpeechRequest(text))


def test_fifty_thousand_characters_are_refused_with_the_limit(engine):
    text = ("A long text. " * 4000)[:50_000]
    with pytest.raises(RequestError, match=f"{MAX_TEXT_CHARS:,}") as err:
        SpeechRequest(text).validate()
    assert "50,000" in str(err.value) and "kept" in str(err.value)


def test_emoji_only_is_refused_and_emoji_in_text_is_skipped_with_a_notice(engine):
    with pytest.raises(RequestError, match="no letters or digits"):
        SpeechRequest("😀🎉👍").validate()
    chunks, notices, _ = run(engine, SpeechRequest("hello 😀 world 🎉", SynthesisSettings(seed=1)))
    assert chunks and any("emoji or symbol" in n for n in notices)


def test_unknown_script_is_skipped_or_refused(engine):
    # the tiny voice's alphabet is Latin letters: Cyrillic and CJK cannot be read
    with pytest.raises(RequestError, match="cannot read"):
        run(engine, SpeechRequest("Привет 你好"))
    chunks, notices, _ = run(engine, SpeechRequest("hello Привет there"))
    assert len(chunks) == 1 and any("alphabet" in n for n in notices)


def test_symbols_missing_from_the_phoneme_map_are_skipped_with_a_warning(tiny_voice, caplog):  # noqa: F811
    from collections import Counter

    from desktop.engines.speech.phonemes import PhonemeIds

    pack = load_pack(tiny_voice)
    to_ids = PhonemeIds(pack.config["phoneme_id_map"], "interspersed")
    missing: Counter = Counter()
    with caplog.at_level("WARNING"):
        ids = to_ids(["a", "§", "b", "§"], missing)
    assert ids == to_ids(["a", "b"]) and missing == Counter({"§": 2})
    assert sum("'§'" in r.getMessage() for r in caplog.records) == 1  # once per symbol


@pytest.mark.parametrize("speed", [0, -1.0, float("nan")])
def test_speed_zero_or_negative_is_refused(engine, speed):
    with pytest.raises(RequestError, match="Speed must be between"):
        SpeechRequest("hello", SynthesisSettings(speed=speed)).validate()


def test_a_long_first_sentence_speaks_its_opening_clause_first(engine):
    text = "the old keeper climbed the winding stairs every evening, carrying a lantern and a small notebook. Then he slept."
    chunks, _, done = run(engine, SpeechRequest(text, SynthesisSettings(seed=1)))
    assert [c.text for c in chunks] == [
        "the old keeper climbed the winding stairs every evening,",
        "carrying a lantern and a small notebook.",
        "Then he slept.",
    ]
    assert chunks[0].char_end == text.index(",") + 1 and chunks[-1].char_end == len(text)
