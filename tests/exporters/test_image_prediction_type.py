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
    source = tiny_sd_source(cache_dir)  # built first: a fresh build prints progress bars on stderr
    capsys.readouterr()
    assert main(["image", str(source), "--out", str(tmp_path / "o"), "--prediction-type", "epsilon"]) == 2
    err = capsys.readouterr().err
    assert "prediction_type" in err and "\n" not in err.strip()


def test_export_notes_are_printed_as_progress_lines(tmp_path, capsys):
    from exporters.__main__ import _print_notes

    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"export_notes": ["prediction type epsilon, from the file name"]}}))
    _print_notes(tmp_path)
    assert capsys.readouterr().err == "[export] note: prediction type epsilon, from the file name\n"


@pytest.fixture(scope="module")
def sd2(tmp_path_factory):
    """A tiny SD 2.x pipeline as single files named like Stability's two releases, and a configs
    root whose sd21 (v) and sd21-base (epsilon) bundles describe the tiny model."""
    import shutil

    from tests.tiny_checkpoint import tiny_sd2_folder, write_sd2_single_file

    root = tmp_path_factory.mktemp("sd2")
    folder = tiny_sd2_folder(root / "pipeline", "v_prediction")
    configs = root / "configs"
    for key, kind in (("sd21", "v_prediction"), ("sd21-base", "epsilon")):
        shutil.copytree(folder, configs / key, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
        sched = configs / key / "scheduler" / "scheduler_config.json"
        sched.write_text(json.dumps(dict(json.loads(sched.read_text()), prediction_type=kind)))
        (configs / key / "atelier_defaults.json").write_text(json.dumps({"default_steps": 25, "default_guidance": 7.5}))
    files = {name: write_sd2_single_file(folder, root / f"{name}.safetensors") for name in ("tiny-v2-1_768-ema", "tiny-v2-1_512-ema")}
    return folder, configs, files


def test_a_512_sd2_checkpoint_loads_as_the_epsilon_base_with_its_weights_intact(sd2):
    import diffusers

    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source

    folder, configs, files = sd2
    source = load_checkpoint_source(str(files["tiny-v2-1_512-ema"]), configs=configs)
    config = source.extras["pack_config"]
    assert (config["family"], config["prediction_type"]) == ("sd21-base", "epsilon")
    assert config["prediction_type_source"].startswith("the file name ('512'") and config["family_label"] == "Stable Diffusion 2.x 512 base"
    original = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    for part in ("unet", "text_encoder"):  # the OpenCLIP layout (fused q/k/v) and the UNet map back exactly
        want, got = getattr(original, part).state_dict(), getattr(source.model, part).state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want), part


def test_a_768_v_checkpoint_exports_and_matches_diffusers_with_v_prediction(sd2, tmp_path, monkeypatch, capsys):
    from exporters.__main__ import main

    _folder, configs, files = sd2
    monkeypatch.setenv("ATELIER_IMAGE_CONFIGS", str(configs))
    assert main(["image", str(files["tiny-v2-1_768-ema"]), "--out", str(tmp_path / "pack")]) == 0
    assert "[export] note: prediction type v_prediction, from the file name ('768'" in capsys.readouterr().err
    m = json.loads((tmp_path / "pack" / "manifest.json").read_text())
    assert (m["config"]["family"], m["config"]["prediction_type"]) == ("sd21", "v_prediction")
    assert json.loads((tmp_path / "pack" / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"
    assert m["validation"]["reports"]["fp32"]["end_to_end"]["pixel_max_abs"] <= 2  # our engine vs diffusers, v-prediction


def test_models_import_passes_the_option_to_the_checkpoint_export(sd2, monkeypatch, capsys):
    """`models import FILE --prediction-type epsilon` overrides what the file's name says (768:
    v); the export child gets the option, and the pack in the library records it."""
    from desktop.cli import main
    from desktop.engines.packs.library import Library

    _folder, configs, files = sd2
    monkeypatch.setenv("ATELIER_IMAGE_CONFIGS", str(configs))
    assert main(["models", "import", str(files["tiny-v2-1_768-ema"]), "--name", "sd2-eps", "--prediction-type", "epsilon"]) == 0
    assert "note: prediction type epsilon, from --prediction-type" in capsys.readouterr().err
    config = Library().load("sd2-eps").config
    assert (config["family"], config["prediction_type"], config["prediction_type_source"]) == ("sd21-base", "epsilon", "--prediction-type")


def test_models_import_reads_v_and_refuses_a_bad_value_or_a_folder_in_one_line(sd2, cache_dir, capsys):
    from desktop.cli import build_parser, main
    from tests.tiny_sd import tiny_sd_pack

    _folder, _configs, files = sd2
    for typed, meant in (("v", "v_prediction"), ("V_Prediction", "v_prediction"), ("epsilon", "epsilon")):
        assert build_parser().parse_args(["models", "import", "x.safetensors", "--prediction-type", typed]).prediction_type == meant
    folder = tiny_sd_pack(cache_dir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # a usage error: argparse's exit, as one line
        main(["models", "import", str(files["tiny-v2-1_512-ema"]), "--prediction-type", "x0"])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "\n" not in err and "must be epsilon (SD 2.x 512 base models) or v (768 models), not 'x0'" in err
    assert main(["models", "import", str(folder), "--prediction-type", "v"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--prediction-type applies to single-file checkpoints" in err
