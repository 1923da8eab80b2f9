"""Exported SD / SDXL graphs run attention as ONNX Runtime's fused MultiHeadAttention.

Unfused, every attention block materialises a [batch, heads, S, S] score matrix (S = latent
pixels: 4096 at 512x512) through MatMul -> Softmax -> MatMul; fused, ONNX Runtime's CPU
kernel tiles it (MLAS flash attention) and never holds it. These tests read the graphs a
user's export writes: one MultiHeadAttention per diffusers attention block, and no MatMul
left that multiplies two activations (the score and the weighted-sum products are the only
ones an SD UNet has), in the UNet and the VAE alike, in fp32 and quantized packs.
"""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.tiny_sd import tiny_sd_pack, tiny_sd_source  # noqa: E402
from tests.tiny_sdxl import tiny_sdxl_pack, tiny_sdxl_source  # noqa: E402


def attention_blocks(module) -> int:
    from diffusers.models.attention_processor import Attention

    return sum(isinstance(m, Attention) for m in module.modules())


def graph_summary(path) -> tuple[int, list[str]]:
    """(MultiHeadAttention nodes, names of MatMuls whose inputs are both activations)."""
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    # a quantized weight reaches its MatMul through DequantizeLinear / Cast / Transpose of a
    # constant: still a weight, not an activation
    for n in graph.node:
        if n.op_type in ("DequantizeLinear", "Cast", "Transpose", "Reshape") and n.input and n.input[0] in constants:
            constants.update(n.output)
    fused = [n for n in graph.node if n.op_type == "MultiHeadAttention" and n.domain == "com.microsoft"]
    products = [n.name for n in graph.node if n.op_type in ("MatMul", "MatMulInteger") and not any(i in constants for i in n.input[:2])]
    return len(fused), products


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_sd_unet_and_vae_attention_is_fused(cache_dir, precision):
    from diffusers import StableDiffusionPipeline

    pack = tiny_sd_pack(cache_dir, precision)
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd_source(cache_dir)), local_files_only=True)
    fused, products = graph_summary(pack / "unet" / "model.onnx")
    assert fused == attention_blocks(pipe.unet) > 0
    assert products == []
    fused, products = graph_summary(pack / "vae_decoder" / "model.onnx")
    assert fused == attention_blocks(pipe.vae.decoder) > 0
    assert products == []


def test_sdxl_unet_attention_is_fused(cache_dir):
    from diffusers import StableDiffusionXLPipeline

    pack = tiny_sdxl_pack(cache_dir)
    pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_source(cache_dir)), local_files_only=True)
    fused, products = graph_summary(pack / "unet" / "model.onnx")
    assert fused == attention_blocks(pipe.unet) > 0
    assert products == []


def test_the_check_sees_unfused_attention(tmp_path):
    """The same check on an unfused export finds the score products (so a passing test
    above means something)."""
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")).eval()
    path = tmp_path / "unet.onnx"
    with torch.inference_mode():
        torch.onnx.export(unet, (torch.randn(1, 4, 8, 8), torch.tensor([1.0]), torch.randn(1, 7, 32)), str(path), dynamo=False)
    fused, products = graph_summary(path)
    assert fused == 0
    assert len(products) == 2 * attention_blocks(unet)
