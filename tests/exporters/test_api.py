"""``exporters.export`` is the one programmatic entry point: what a caller gets wrong is
refused with a typed error listing what is supported, before any weights load, and the
pipeline's steps hand their results on instead of leaving them on the config."""

from __future__ import annotations

import json

import pytest

from desktop.engines.errors import ExportError, UnsupportedArchitectureError
from exporters import MODALITIES, export, open_config
from exporters.errors import UnsupportedModalityError, UnsupportedOptionError, UnsupportedPrecisionError


def test_an_unknown_modality_lists_the_modalities(tmp_path):
    with pytest.raises(UnsupportedModalityError) as info:
        export("video", tmp_path, tmp_path / "out")
    assert info.value.supported == MODALITIES and all(m in str(info.value) for m in MODALITIES)
    assert isinstance(info.value, ExportError)


def test_an_option_the_family_does_not_take_is_refused_with_the_ones_it_does(tmp_path):
    from tests.tiny_models import tiny_hf_model

    src = tiny_hf_model("gpt2", tmp_path / "hf")
    with pytest.raises(UnsupportedOptionError) as info:
        export("text", src, tmp_path / "out", lora=tmp_path / "x.safetensors")
    assert info.value.options == ["lora"] and info.value.architecture == "gpt2" and "none" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_precision_the_family_lacks_is_refused_before_loading(tmp_path, monkeypatch):
    from exporters.speech.configs import HfVitsExport
    from tests.speech_helpers import make_tiny_vits

    src = make_tiny_vits(tmp_path / "hf")

    def never(*a, **k):
        raise AssertionError("the model was loaded before the precision was checked")

    monkeypatch.setattr(HfVitsExport, "load_source", classmethod(never))
    with pytest.raises(UnsupportedPrecisionError) as info:
        export("speech", src, tmp_path / "out", "int4")
    assert info.value.supported == ("fp32", "fp16", "int8") and "int8" in str(info.value)


def test_an_unknown_architecture_lists_the_registered_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnsupportedArchitectureError, match="llama"):
        open_config("text", tmp_path)


def test_steps_return_their_results_and_leave_the_config_as_it_was(tmp_path):
    """The int4 counts reach the manifest through the pipeline, not through the config."""
    from desktop.engines.packs.pack import load_pack
    from exporters.pipeline import run_export
    from tests.tiny_models import tiny_hf_model

    config = open_config("text", tiny_hf_model("llama", tmp_path / "hf"), "int4")
    before = dict(vars(config))
    events = list(run_export(config, tmp_path / "pack", "int4", force=True, name="tiny-int4"))
    assert vars(config).keys() == before.keys() and all(vars(config)[k] is v for k, v in before.items())
    pack = load_pack(tmp_path / "pack")
    assert pack.config["quantization"] and set(pack.manifest["validation"]["reports"]) == {"fp32", "int4"}
    assert events[-1].stats["out"] == str(tmp_path / "pack")
