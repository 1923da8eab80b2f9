"""An SDXL folder in optimum's ONNX layout (text encoders listing every layer as
``hidden_states.N``, a config.json per component, no manifest) imports as an SDXL pack and
draws what our own export of the same model draws; an incomplete one is refused by name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import ImportFormatError  # noqa: E402
from desktop.engines.events import ImageResult  # noqa: E402
from desktop.engines.image.engine import ImageEngine, ImageRequest  # noqa: E402
from desktop.engines.packs.pack import load_pack  # noqa: E402
from desktop.engines.providers import RuntimeSettings  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_pack, tiny_sdxl_source  # noqa: E402

CPU = RuntimeSettings(provider="cpu")


def optimum_text_encoder(encoder, out, pooled: bool) -> None:
    """The encoder as optimum exports it for SDXL: pooled output first, then every hidden state."""
    from exporters.image.stable_diffusion.graph import _export

    layers = encoder.config.num_hidden_layers + 1
    names = (["text_embeds"] if pooled else ["last_hidden_state", "pooler_output"]) + [f"hidden_states.{i}" for i in range(layers)]

    class Optimum(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = encoder

        def forward(self, input_ids):
            o = self.inner(input_ids=input_ids, output_hidden_states=True, return_dict=True)
            head = (o.text_embeds,) if pooled else (o.last_hidden_state, o.pooler_output)
            return head + tuple(o.hidden_states)

    shutil.rmtree(out)
    _export(Optimum(), (torch.zeros((1, 77), dtype=torch.int64),), out / "model.onnx", ["input_ids"], names,
            {"input_ids": {0: "batch"}, **{n: {0: "batch"} for n in names}})


def optimum_layout(pack_dir, source, dest):
    shutil.copytree(pack_dir, dest, ignore=shutil.ignore_patterns("manifest.json"))
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(source), local_files_only=True)
    optimum_text_encoder(pipe.text_encoder, dest / "text_encoder", pooled=False)
    optimum_text_encoder(pipe.text_encoder_2, dest / "text_encoder_2", pooled=True)
    shutil.copy(source / "model_index.json", dest)
    shutil.copy(source / "unet" / "config.json", dest / "unet")
    for part in ("vae_decoder", "vae_encoder"):
        shutil.copy(source / "vae" / "config.json", dest / part)
    return dest


def draw(pack, **kw):
    engine = ImageEngine(pack, CPU)
    try:
        return next(e.image for e in engine.generate(ImageRequest(**kw)) if isinstance(e, ImageResult))
    finally:
        engine.close()


def test_optimum_sdxl_folder_imports_and_draws_like_our_export(cache_dir, tmp_path):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    ours = tiny_sdxl_pack(cache_dir)
    folder = optimum_layout(ours, tiny_sdxl_source(cache_dir), tmp_path / "sdxl-optimum")
    pack = import_path(folder, Library(), name="tiny-sdxl-optimum")
    assert pack.architecture == "stable-diffusion-xl"
    assert pack.config["scaling_factor"] == pytest.approx(0.13025) and pack.config["force_zeros_for_empty_prompt"] is True
    kw = dict(prompt="a red apple", negative_prompt="blurry", width=32, height=32, steps=4, guidance=5.0, scheduler="euler", seed=2)
    a, b = draw(pack, **kw), draw(load_pack(ours), **kw)
    assert a.std() > 1 and np.abs(a.astype(int) - b.astype(int)).max() <= 1

    shutil.rmtree(folder / "text_encoder_2")
    with pytest.raises(ImportFormatError, match="missing the Stable Diffusion component.*text_encoder_2/"):
        import_path(folder, Library(), name="no-second-encoder")
