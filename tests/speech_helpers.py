"""Tiny random voices built on the fly for the speech tests (never downloaded).

* ``make_tiny_vits``: a Hugging Face VitsModel folder from VitsConfig (MMS-TTS shape),
  with a character vocabulary;
* ``export_tiny_voice``: that folder through our exporter -> a speech pack;
* ``make_piper_voice_folder``: a Piper-style voice folder (.onnx + .onnx.json) exported
  the way Piper exports (noise drawn inside the graph), from Piper's own training code.
"""

from __future__ import annotations

import json
from pathlib import Path

CHARS = list("_ abcdefghijklmnopqrstuvwxyz'-")


def make_tiny_vits(folder: Path, speakers: int = 1, seed: int = 0) -> Path:
    import torch
    from transformers import VitsConfig, VitsModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = VitsConfig(
        vocab_size=len(CHARS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, flow_size=8,
        spectrogram_bins=33, upsample_initial_channel=16, upsample_rates=[8, 8], upsample_kernel_sizes=[16, 16],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], prior_encoder_num_flows=2, prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1, duration_predictor_num_flows=2, duration_predictor_filter_channels=16,
        depth_separable_num_layers=2, num_speakers=speakers, speaker_embedding_size=8 if speakers > 1 else 0, sampling_rate=16000,
    )
    VitsModel(cfg).eval().save_pretrained(str(folder))
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(CHARS)}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "VitsTokenizer", "add_blank": True, "normalize": True, "is_uroman": False, "language": "eng"}))
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# tiny test voice\n")
    return folder


def export_tiny_voice(root: Path, precision: str = "fp32", speakers: int = 1) -> Path:
    import exporters

    src = make_tiny_vits(root / f"hf-{speakers}", speakers)
    return exporters.export("speech", src, root / f"pack-{speakers}-{precision}", precision, name=f"tiny-voice-{speakers}-{precision}")


def make_piper_generator(seed: int = 0):
    import torch
    from piper.train.vits.models import SynthesizerTrn

    torch.manual_seed(seed)
    return SynthesizerTrn(
        n_vocab=256, spec_channels=513, segment_size=32, inter_channels=8, hidden_channels=16, filter_channels=32, n_heads=2, n_layers=1,
        kernel_size=3, p_dropout=0.1, resblock="2", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),), upsample_rates=(8, 8, 4),
        upsample_initial_channel=16, upsample_kernel_sizes=(16, 16, 8), n_speakers=1, gin_channels=0, use_sdp=True,
    ).eval()


PIPER_HPARAMS = dict(
    num_symbols=256, num_speakers=1, resblock="2", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),), upsample_rates=(8, 8, 4),
    upsample_initial_channel=16, upsample_kernel_sizes=(16, 16, 8), filter_length=1024, hop_length=256, inter_channels=8, hidden_channels=16,
    filter_channels=32, n_heads=2, n_layers=1, kernel_size=3, p_dropout=0.1, segment_size=8192, gin_channels=0, use_sdp=True,
)


def piper_voice_json(phoneme_type: str = "text") -> dict:
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {
        "audio": {"sample_rate": 22050, "quality": "x_low"},
        "espeak": {"voice": "en-us"},
        "phoneme_type": phoneme_type,
        "num_symbols": 256,
        "num_speakers": 1,
        "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "language": {"code": "en_US"},
        "piper_version": "1.0.0",
    }


def make_piper_checkpoint(folder: Path) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    g = make_piper_generator()
    ckpt = folder / "epoch=1-step=10.ckpt"
    torch.save({"state_dict": {"model_g." + k: v for k, v in g.state_dict().items()}, "hyper_parameters": PIPER_HPARAMS}, ckpt)
    (folder / "config.json").write_text(json.dumps(piper_voice_json()))
    return ckpt


def make_piper_voice_folder(folder: Path, name: str = "xx_XX-tiny-x_low") -> Path:
    """What a user downloads from Piper: NAME.onnx (noise inside) + NAME.onnx.json."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    g = make_piper_generator()

    class Infer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g = g  # a submodule, so its weights trace as initializers

        def forward(self, input, input_lengths, scales):
            return self.g.infer(input, input_lengths, noise_scale=scales[0], length_scale=scales[1], noise_scale_w=scales[2])[0]

    with torch.inference_mode():
        torch.onnx.export(
            Infer().eval(), (torch.randint(0, 256, (1, 20)), torch.tensor([20]), torch.tensor([0.667, 1.0, 0.8])), str(folder / f"{name}.onnx"),
            input_names=["input", "input_lengths", "scales"], output_names=["output"], dynamic_axes={"input": {1: "phonemes"}, "output": {2: "time"}},
            opset_version=15, dynamo=False,
        )
    (folder / f"{name}.onnx.json").write_text(json.dumps(piper_voice_json()))
    (folder / "MODEL_CARD").write_text("# Model card for tiny\n\n## Dataset\n\n* License: CC0\n")
    return folder


# -- fixtures (import them into a test module to use them) ----------------------------

import hashlib  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_SOURCES = ("exporters/pipeline.py", "exporters/speech/configs.py", "exporters/speech/source.py", "exporters/speech/graph.py", "exporters/speech/validate.py", "desktop/engines/speech/graph.py", "tests/speech_helpers.py")


def cached_voice(cache_dir: Path, precision: str = "fp32", speakers: int = 1) -> Path:
    """Export once and reuse across runs until the exporter's code changes."""
    from desktop.engines.packs.pack import load_pack

    key = hashlib.sha256(b"".join((ROOT / p).read_bytes() for p in _SOURCES)).hexdigest()[:12]
    root = cache_dir / f"speech-{key}"
    pack = root / f"pack-{speakers}-{precision}"
    if pack.is_dir():
        try:
            load_pack(pack)
            return pack
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
            import shutil

            shutil.rmtree(pack, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    return export_tiny_voice(root, precision, speakers)


@pytest.fixture(scope="session")
def tiny_voice(cache_dir) -> Path:
    return cached_voice(cache_dir)


@pytest.fixture(scope="session")
def tiny_voice_2spk(cache_dir) -> Path:
    return cached_voice(cache_dir, speakers=2)
