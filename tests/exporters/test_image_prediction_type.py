"""SD 2.x checkpoints: epsilon (512 base) or v-prediction (768) is decided from, in order, the
user's option, the file's metadata, its name and its weights, and the export report says which;
the option also overrides any checkpoint's scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from desktop.engines.errors import ExportError  # noqa: E402
from exporters.image.stable_diffusion.prediction import PROBE, decide  # noqa: E402


def probe_file(path: Path, spread: float | None, metadata: dict | None = None) -> Path:
    """A safetensors file holding only the layer-norm bias the weight rule reads."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    tensors = {"model.diffusion_model.out.2.bias": torch.zeros(4)}
    if spread is not None:
        bias = torch.randn(320, generator=g)
        tensors[PROBE] = (bias - bias.mean()) / bias.std(unbiased=False) * spread
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("spread, expected", [(0.15, "v_prediction"), (0.03, "epsilon")])
def test_the_weights_decide_when_nothing_else_speaks(tmp_path, spread, expected):
    kind, why = decide(probe_file(tmp_path / "myModel.safetensors", spread), {}, None)
    assert kind == expected and why.startswith("the weights") and f"{spread:.3f}" in why


@pytest.mark.parametrize(
    "name, expected",
    [("v2-1_768-ema-pruned", "v_prediction"), ("v2-1_512-ema-pruned", "epsilon"), ("coolmix-vpred", "v_prediction"),
     ("sd21-base-finetune", "epsilon"), ("photo_v_prediction", "v_prediction")],
)
def test_the_name_speaks_before_the_weights(tmp_path, name, expected):
    # the weights say the opposite of v for every epsilon name and vice versa: the name wins
    spread = 0.15 if expected == "epsilon" else 0.03
    kind, why = decide(probe_file(tmp_path / f"{name}.safetensors", spread), {}, None)
    assert kind == expected and why.startswith("the file name")


def test_metadata_speaks_before_the_name_and_the_option_before_everything(tmp_path):
    path = probe_file(tmp_path / "model-768.safetensors", 0.15)
    assert decide(path, {"modelspec.prediction_type": "epsilon"}, None) == ("epsilon", "the file's metadata (modelspec.prediction_type = epsilon)")
    assert decide(path, {"ss_v_parameterization": "False"}, None)[0] == "epsilon"
    assert decide(path, {"modelspec.prediction_type": "v"}, "epsilon") == ("epsilon", "--prediction-type")
    with pytest.raises(ExportError, match="Unknown prediction type 'x0'"):
        decide(path, {}, "x0")


def test_no_evidence_assumes_v_and_says_so(tmp_path):
    kind, why = decide(probe_file(tmp_path / "mystery.safetensors", None), {}, None)
    assert kind == "v_prediction" and why.startswith("no evidence") and "--prediction-type epsilon" in why


def test_the_option_overrides_a_checkpoints_scheduler_and_the_report_says_so(cache_dir, tmp_path):
    from exporters.image.stable_diffusion.checkpoint import CheckpointExport, load_checkpoint_source
    from tests.exporters.test_image_checkpoint import tiny_configs
    from tests.tiny_checkpoint import tiny_sd1_checkpoint

    ckpt, folder = tiny_sd1_checkpoint(cache_dir)
    source = load_checkpoint_source(str(ckpt), configs=tiny_configs(tmp_path / "configs", folder), prediction_type="v_prediction")
    assert source.model.scheduler.config.prediction_type == "v_prediction"
    config = source.extras["pack_config"]
    assert config["prediction_type"] == "v_prediction" and config["prediction_type_source"] == "--prediction-type"
    assert config["export_notes"] == ["prediction type v_prediction, from --prediction-type"]
    assert "Prediction type: v_prediction, from --prediction-type." in source.model_card
    assert "prediction_type" in CheckpointExport.options


def test_cli_offers_the_option_and_refuses_it_for_a_diffusers_folder(cache_dir, tmp_path, capsys):
    from exporters.__main__ import build_parser, main
    from tests.tiny_sd import tiny_sd_source

    assert build_parser().parse_args(["image", "x.safetensors", "--out", "o", "--prediction-type", "epsilon"]).prediction_type == "epsilon"
    # a diffusers folder's scheduler config already says it: the option does not apply there
    assert main(["image", str(tiny_sd_source(cache_dir)), "--out", str(tmp_path / "o"), "--prediction-type", "epsilon"]) == 2
    err = capsys.readouterr().err
    assert "prediction_type" in err and "\n" not in err.strip()


def test_export_notes_are_printed_as_progress_lines(tmp_path, capsys):
    from exporters.__main__ import _print_notes

    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"export_notes": ["prediction type epsilon, from the file name"]}}))
    _print_notes(tmp_path)
    assert capsys.readouterr().err == "[export] note: prediction type epsilon, from the file name\n"
