"""The speech exporter: tiny random VITS (HF VitsModel and a Piper checkpoint) -> packs."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.engines.errors import ExportError, UnsupportedArchitectureError
from desktop.engines.events import AudioChunk
from desktop.engines.packs.pack import load_pack
from desktop.engines.speech.engine import SpeechEngine, SpeechRequest
from desktop.engines.speech.synthesis import SynthesisSettings
from tests.speech_helpers import cached_voice, tiny_voice  # noqa: F401 - fixture

pytest.importorskip("transformers")


def test_fp32_export_matches_pytorch_and_records_the_report(tiny_voice):  # noqa: F811
    m = load_pack(tiny_voice).manifest
    report = m["validation"]["reports"]["fp32"]
    assert report["max_abs_diff"] < 1e-3 and report["all_same_length"] and report["sentences"] == 3
    assert m["validation"]["passed_floor"] and m["architecture"] == "vits" and m["precision"] == "fp32"
    assert m["config"]["phonemizer"]["kind"] == "chars" and m["config"]["id_style"] == "interspersed"
    assert m["license"]["id"] == "cc-by-nc-4.0" and m["source"]["kind"] == "hf-folder"


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_quantized_exports_play_in_the_engine(cache_dir, precision):
    pack = load_pack(cached_voice(cache_dir, precision))
    reports = pack.manifest["validation"]["reports"]
    assert set(reports) == {"fp32", precision} and reports[precision]["log_mel_l1"] >= 0
    engine = SpeechEngine(pack)
    try:
        audio = np.concatenate([e.samples for e in engine.generate(SpeechRequest("hello world", SynthesisSettings(seed=1))) if isinstance(e, AudioChunk)])
    finally:
        engine.close()
    assert audio.size > 0 and np.isfinite(audio).all()


def test_unknown_architecture_lists_what_is_supported(tmp_path):
    from exporters import export

    (tmp_path / "config.json").write_text('{"model_type": "speecht5"}')
    with pytest.raises(UnsupportedArchitectureError, match="piper-vits, vits"):
        export("speech", tmp_path, tmp_path / "out")
    with pytest.raises(ExportError, match="was not found"):
        export("speech", tmp_path / "nope", tmp_path / "out")


def test_piper_checkpoint_exports_to_a_playable_pack(tmp_path):
    pytest.importorskip("piper.train.vits.models")
    from exporters import export
    from tests.speech_helpers import make_piper_checkpoint

    ckpt = make_piper_checkpoint(tmp_path / "train")
    pack = load_pack(export("speech", ckpt, tmp_path / "pack"))
    report = pack.manifest["validation"]["reports"]["fp32"]
    assert report["all_same_length"] and report["max_abs_diff"] < 1e-3
    assert pack.manifest["source"]["kind"] == "piper-checkpoint" and pack.config["seedable_noise"]
    engine = SpeechEngine(pack)
    try:
        chunks = [e for e in engine.generate(SpeechRequest("hello there", SynthesisSettings(seed=2))) if isinstance(e, AudioChunk)]
    finally:
        engine.close()
    assert chunks and chunks[0].sample_rate == 22050


def test_piper_checkpoint_without_its_config_is_refused(tmp_path):
    pytest.importorskip("piper.train.vits.models")
    from exporters import export
    from tests.speech_helpers import make_piper_checkpoint

    ckpt = make_piper_checkpoint(tmp_path / "train")
    (tmp_path / "train" / "config.json").unlink()
    with pytest.raises(ExportError, match="No voice config found"):
        export("speech", ckpt, tmp_path / "pack")
