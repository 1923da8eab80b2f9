"""LoRAs in the kohya / A1111 key layout (``lora_unet_..._to_q.lora_down.weight`` + ``.alpha``) merge
at export like diffusers-format ones: merged weight = W + scale * alpha / rank * up @ down, on the
UNet and the text encoder; a LoRA for another base, a half-matching one and a file without LoRA
weights are refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import ExportError  # noqa: E402
from tests.tiny_sd import tiny_sd_source  # noqa: E402

RANK, ALPHA = 4, 2.0
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def write_kohya_lora(pipe, out: Path, seed: int = 0, context_dim: int | None = None, only_unet: bool = False) -> dict[str, "torch.Tensor"]:
    """A random LoRA over ``pipe`` in kohya's layout; returns {module path: expected merged weight}.
    ``context_dim`` makes the cross-attention key/value layers expect another text width (a LoRA
    trained for another base)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    state, expected = {}, {}

    def add(prefix: str, path: str, weight) -> None:
        cols = context_dim if context_dim and ("attn2.to_k" in path or "attn2.to_v" in path) else weight.shape[1]
        down, up = torch.randn(RANK, cols, generator=g) * 0.1, torch.randn(weight.shape[0], RANK, generator=g) * 0.1
        key = prefix + path.replace(".", "_")
        state[key + ".lora_down.weight"], state[key + ".lora_up.weight"], state[key + ".alpha"] = down, up, torch.tensor(ALPHA)
        if cols == weight.shape[1]:
            expected[path] = weight.detach().clone() + ALPHA / RANK * up @ down

    for name, module in pipe.unet.named_modules():
        if name.endswith(UNET_TARGETS) and isinstance(module, torch.nn.Linear):
            add("lora_unet_", name, module.weight)
    if not only_unet:
        for name, module in pipe.text_encoder.named_modules():
            if name.endswith(TEXT_TARGETS):
                # kohya names the text encoder's modules from "text_model." as transformers < 5.6 did
                add("lora_te_", "text_model." + name.removeprefix("text_model."), module.weight)
    save_file(state, str(out))
    return expected


def _weights(pipe) -> dict:
    modules = {n: m for n, m in pipe.unet.named_modules()}
    modules.update({"text_model." + n.removeprefix("text_model."): m for n, m in pipe.text_encoder.named_modules()})
    return modules


@pytest.fixture(scope="module")
def folder(cache_dir):
    return tiny_sd_source(cache_dir)


def test_kohya_lora_merges_as_w_plus_alpha_over_rank_up_down(folder, tmp_path):
    from exporters.image.stable_diffusion.source import load_image_source

    base = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    expected = write_kohya_lora(base, tmp_path / "style.safetensors")
    from safetensors.torch import load_file

    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha" in load_file(str(tmp_path / "style.safetensors"))
    source = load_image_source(str(folder), "stable-diffusion", lora=tmp_path / "style.safetensors")
    modules = _weights(source.model)
    assert len(expected) > 20
    for path, want in expected.items():
        assert torch.allclose(modules[path].weight, want, atol=1e-6), path
    assert not any("lora" in n for n, _ in source.model.unet.named_parameters())  # the plain model is exported
    assert "style.safetensors (kohya layout" in source.model_card and "lora:style.safetensors" in source.sha256


def test_kohya_lora_merges_into_a_single_file_checkpoint(cache_dir, tmp_path):
    from exporters.image.stable_diffusion.checkpoint import load_checkpoint_source
    from tests.exporters.test_image_checkpoint import tiny_configs
    from tests.tiny_checkpoint import tiny_sd1_checkpoint

    ckpt, ckpt_folder = tiny_sd1_checkpoint(cache_dir)
    base = diffusers.StableDiffusionPipeline.from_pretrained(str(ckpt_folder), local_files_only=True)
    expected = write_kohya_lora(base, tmp_path / "style.safetensors", seed=3, only_unet=True)
    source = load_checkpoint_source(str(ckpt), lora=tmp_path / "style.safetensors", configs=tiny_configs(tmp_path / "configs", ckpt_folder))
    modules = _weights(source.model)
    assert all(torch.allclose(modules[p].weight, w, atol=1e-6) for p, w in expected.items())


def test_a_lora_for_another_base_is_refused_naming_both(folder, tmp_path):
    from exporters.image.stable_diffusion.source import load_image_source

    base = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    write_kohya_lora(base, tmp_path / "xl.safetensors", context_dim=2048, only_unet=True)
    with pytest.raises(ExportError) as info:
        load_image_source(str(folder), "stable-diffusion", lora=tmp_path / "xl.safetensors")
    message = str(info.value)
    assert "LoRA for Stable Diffusion XL" in message and "this model is" in message and "\n" not in message


def test_a_lora_whose_layers_do_not_all_match_is_refused(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    from exporters.image.stable_diffusion.source import load_image_source

    base = diffusers.StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    write_kohya_lora(base, tmp_path / "full.safetensors", only_unet=True)
    state = load_file(str(tmp_path / "full.safetensors"))
    # layers of a deeper UNet than this one (a block index the tiny model does not have)
    extra = {k.replace("down_blocks_1_", "down_blocks_7_"): v.clone() for k, v in state.items() if "down_blocks_1_" in k}
    save_file({**state, **extra}, str(tmp_path / "deeper.safetensors"))
    with pytest.raises(ExportError, match=r"Only \d+ of the \d+ layers in the LoRA 'deeper.safetensors' match this model"):
        load_image_source(str(folder), "stable-diffusion", lora=tmp_path / "deeper.safetensors")


def test_a_file_without_lora_weights_is_refused_before_loading(tmp_path):
    from safetensors.numpy import save_file
    import numpy as np

    from exporters.image.stable_diffusion.lora import read_lora

    save_file({"model.diffusion_model.out.2.weight": np.zeros((4,), np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ExportError, match="holds no LoRA weights"):
        read_lora(tmp_path / "model.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ExportError, match="The LoRA 'bad.safetensors'"):
        read_lora(tmp_path / "bad.safetensors")
