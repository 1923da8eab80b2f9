"""Exporting our recipes' checkpoints: tiny untrained models built from the recipe classes
go through ``python -m exporters image`` (the CLI over ``exporters.export``): ONNX matches PyTorch, the manifest
carries the validation and the judge's quality record, and the app's engine runs the pack."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from desktop.engines.errors import ExportError, ImportFormatError  # noqa: E402
from desktop.engines.events import ImageResult  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from exporters.__main__ import main as exporters_main  # noqa: E402
from training.diffusion_schedule import SCHEDULER_CONFIG  # noqa: E402

TRAIN = {"steps": 0, "batch": 1, "lr": 0.0, "seed": 0, "wall_minutes": 0.0, "cpu_minutes": 0.0, "images": 0}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True)
def few_samples(monkeypatch):
    """The card's figure uses hundreds of samples; a test needs the procedure, not the number."""
    import exporters.image.ours.quality as quality

    monkeypatch.setattr(quality, "FASHION_PER_CLASS", 1)
    monkeypatch.setattr(quality, "EMOJI_PROMPTS_LIMIT", 3)


def emoji_checkpoint(path):
    from training.emoji_captions import Vocabulary
    from training.train_emoji import build_models

    torch.manual_seed(0)
    vocab = Vocabulary(["<pad>", "<bos>", "red", "apple", "cat", "smiling", "heart", "blue", "green", "tree"])
    model_config = {"channels": [8, 16, 16], "blocks": [1, 1, 1], "attn": [False, False, True], "ctx_dim": 16, "emb": 32}
    text_config = {"dim": 16, "layers": 1, "heads": 2}
    unet, text = build_models(len(vocab.tokens), model_config, text_config)
    torch.save({"atelier_recipe": "emoji-diffusion", "unet": unet.state_dict(), "text": text.state_dict(), "model_config": model_config,
                "text_config": text_config, "vocab": vocab.to_json(), "scheduler": SCHEDULER_CONFIG, "train": TRAIN}, path)
    return path


def fashion_checkpoint(path, kind):
    from training.fashion_models import Generator, VAEDecoder
    from training.pixelcnn import PixelCNN

    torch.manual_seed(0)
    if kind == "fashion-pixelcnn":
        net = PixelCNN(levels=16, ch=8, layers=2)
        config = {"levels": 16, "receptive_rows": net.receptive_rows(), "ch": 8, "layers": 2, "first_rows": 3}
    else:
        net = (Generator if kind == "fashion-gan" else VAEDecoder)(16)
        config = {"z_dim": 16}
    torch.save({"atelier_recipe": kind, "weights": net.eval().state_dict(), "config": config, "classes": CLASSES, "train": TRAIN}, path)
    return path


def export(src, out, precision="fp32"):
    code = exporters_main(["image", str(src), "--out", str(out), "--precision", precision, "--name", out.name])
    assert code == 0
    return load_pack(out)


def check_quality_record(pack):
    quality = pack.config["quality"]
    assert set(quality["floor"]) == {"accuracy", "frechet"}
    if "skipped" in quality:  # the Debian data packages are not installed here
        assert "not measured" in quality["skipped"] and quality["meets_floor"] is False
    else:
        for key in ("generated", "real_held_out"):
            assert 0.0 <= quality[key]["accuracy"] <= 1.0 and np.isfinite(quality[key]["frechet"])
        assert quality["meets_floor"] is False, "an untrained model cannot meet the floor"
    card = (pack.root / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card == pack.manifest["model_card"] and "## Quality" in card


def first_image(pack, **kw):
    engine = ImageEngine(pack)
    try:
        return [e for e in engine.generate(ImageRequest(seed=1, **kw)) if isinstance(e, ImageResult)][0].image
    finally:
        engine.close()


def test_emoji_checkpoint_exports_validates_and_runs(tmp_path):
    ckpt = emoji_checkpoint(tmp_path / "final.pt")
    fp32 = export(ckpt, tmp_path / "emoji-fp32")
    report = fp32.manifest["validation"]["reports"]["fp32"]
    assert report["components"]["unet"]["max_abs_diff"] < 1e-4 and report["components"]["text_encoder"]["max_abs_diff"] < 1e-4
    assert report["end_to_end"]["pixel_mean_abs"] <= 0.5 and fp32.manifest["validation"]["passed_floor"]
    assert fp32.architecture == "emoji-diffusion" and fp32.config["scheduler"]["prediction_type"] == "v_prediction"
    check_quality_record(fp32)
    image = first_image(fp32, prompt="red apple", steps=3, width=32, height=32)
    assert image.shape == (32, 32, 3)
    int8 = export(ckpt, tmp_path / "emoji-int8", "int8")
    assert int8.manifest["validation"]["reports"]["int8"]["end_to_end"]["pixel_mean_abs"] <= 4.0
    unet_bytes = {p.name: next(f.bytes for f in p.files if f.path == "unet.onnx") for p in (fp32, int8)}
    assert unet_bytes["emoji-int8"] < 0.75 * unet_bytes["emoji-fp32"]  # tiny layers stay fp32


@pytest.mark.parametrize("kind", ["fashion-gan", "fashion-vae", "fashion-pixelcnn"])
def test_fashion_checkpoints_export_validate_and_run(tmp_path, kind):
    pack = export(fashion_checkpoint(tmp_path / "final.pt", kind), tmp_path / kind)
    report = pack.manifest["validation"]["reports"]["fp32"]
    assert next(iter(report["components"].values()))["max_abs_diff"] < 1e-4
    assert pack.manifest["validation"]["passed_floor"]
    assert pack.architecture == ("fashion-pixelcnn" if kind == "fashion-pixelcnn" else "latent-generator")
    assert pack.config["recipe"] == kind and pack.config["classes"] == CLASSES
    check_quality_record(pack)
    image = first_image(pack, class_label="Bag")
    assert image.shape == (28, 28, 3)


def test_foreign_files_are_refused_with_a_reason(tmp_path):
    from exporters import export

    out = tmp_path / "out"
    with pytest.raises(ExportError, match="neither a diffusers"):
        export("image", tmp_path / "missing.pt", out)
    torch.save({"weights": {}}, tmp_path / "other.pt")  # not ours: read as a single-file checkpoint, a pickle
    with pytest.raises(ImportFormatError, match="pickle checkpoint"):
        export("image", tmp_path / "other.pt", out)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")  # nor this: never unpickled beyond tensors
    with pytest.raises(ImportFormatError, match="pickle checkpoint"):
        export("image", tmp_path / "junk.pt", out)
    assert json.loads(json.dumps(SCHEDULER_CONFIG))["beta_schedule"] == "squaredcos_cap_v2"
