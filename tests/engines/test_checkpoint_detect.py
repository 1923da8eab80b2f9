"""Single-file checkpoints: the header is read honestly and the family told from names and shapes."""

import json
import math

import pytest

from desktop.engines.errors import ImportFormatError
from desktop.engines.image.checkpoint import CONV_IN, CROSS_ATTN_K, LABEL_EMB, detect, read_header

SD1_TEXT = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
SD2_TEXT = "cond_stage_model.model.token_embedding.weight"
XL_TEXT_L = "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight"
XL_TEXT_G = "conditioner.embedders.1.model.positional_embedding"
XL_K = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
VAE_KEY = "first_stage_model.decoder.conv_out.weight"


def write_checkpoint(path, shapes: dict, *, metadata=None, lie=None):
    """A safetensors file with zero-filled tensors of the given shapes (F16)."""
    table, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape) * 2
        table[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        table["__metadata__"] = metadata
    if lie:
        lie(table)
    header = json.dumps(table).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(offset))
    return path


def sd1(channels=4):
    return {CONV_IN: (8, channels, 3, 3), CROSS_ATTN_K: (8, 768), SD1_TEXT: (4, 4), VAE_KEY: (3, 2, 3, 3)}


def sd2(channels=4):
    return {CONV_IN: (8, channels, 3, 3), CROSS_ATTN_K: (8, 1024), SD2_TEXT: (4, 4)}


def sdxl(channels=4):
    return {CONV_IN: (8, channels, 3, 3), XL_K: (8, 2048), LABEL_EMB: (8, 2816), XL_TEXT_L: (4, 4), XL_TEXT_G: (4, 4)}


@pytest.mark.parametrize(
    "shapes, name, key, inpainting",
    [
        (sd1(), "dreamshaper.safetensors", "sd15", False),
        (sd1(9), "sd-v1-5-inpainting.safetensors", "sd15-inpainting", True),
        (sd2(), "v2-1_768.safetensors", "sd21", False),
        (sd2(9), "512-inpainting.safetensors", "sd2-inpainting", True),
        (sdxl(), "juggernautXL.safetensors", "sdxl", False),
        (sdxl(9), "sdxl-inpaint.safetensors", "sdxl-inpainting", True),
    ],
)
def test_each_family_is_recognised(tmp_path, shapes, name, key, inpainting):
    found = detect(write_checkpoint(tmp_path / name, shapes))
    assert found.family.key == key and found.family.inpainting is inpainting


def test_turbo_is_told_by_name_or_metadata_and_the_vae_is_noticed(tmp_path):
    assert detect(write_checkpoint(tmp_path / "sd_xl_turbo_1.0.safetensors", sdxl())).turbo
    assert detect(write_checkpoint(tmp_path / "m.safetensors", sd2(), metadata={"modelspec.title": "SD-Turbo"})).turbo
    plain = detect(write_checkpoint(tmp_path / "plain.safetensors", sd1()))
    assert not plain.turbo and plain.has_vae
    assert not detect(write_checkpoint(tmp_path / "novae.safetensors", sd2())).has_vae


@pytest.mark.parametrize(
    "shapes, said",
    [
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 4)}, "a LoRA"),
        ({"encoder.conv_in.weight": (4, 3, 3, 3), "decoder.conv_out.weight": (3, 4, 3, 3)}, "a VAE on its own"),
        ({"model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": (4, 4)}, "Stable Diffusion 3"),
        ({"double_blocks.0.img_attn.qkv.weight": (4, 4)}, "Flux"),
        ({CONV_IN: (8, 8, 3, 3), CROSS_ATTN_K: (8, 768)}, "instruct-pix2pix"),
        ({"down_blocks.0.resnets.0.conv1.weight": (4, 4, 3, 3)}, "diffusers' layout"),
        ({"some.other.weight": (2, 2)}, "not a model Atelier recognises"),
    ],
)
def test_other_files_are_named_and_the_supported_list_given(tmp_path, shapes, said):
    with pytest.raises(ImportFormatError) as e:
        detect(write_checkpoint(tmp_path / "x.safetensors", shapes))
    assert said in str(e.value) and "Stable Diffusion XL" in str(e.value)


def test_pickle_checkpoints_are_refused_unopened(tmp_path):
    evil = tmp_path / "model.ckpt"
    evil.write_bytes(b"\x80\x04cos\nsystem\n")
    with pytest.raises(ImportFormatError, match="pickle"):
        read_header(evil)


@pytest.mark.parametrize(
    "lie, said",
    [
        (lambda t: t[CONV_IN].update(data_offsets=[0, 10**9]), "outside the file"),
        (lambda t: t[CONV_IN].update(shape=[8, 4, 3, 4]), "spans"),
        (lambda t: t[CROSS_ATTN_K].update(data_offsets=[0, t[CROSS_ATTN_K]["data_offsets"][1] - t[CROSS_ATTN_K]["data_offsets"][0]]), "overlap"),
        (lambda t: t[CONV_IN].update(dtype="F128"), "unknown type"),
        (lambda t: t[CONV_IN].update(shape=[-1, 4]), "impossible shape"),
    ],
)
def test_a_lying_header_is_one_clear_error(tmp_path, lie, said):
    with pytest.raises(ImportFormatError, match=said):
        read_header(write_checkpoint(tmp_path / "x.safetensors", sd1(), lie=lie))


def test_a_header_longer_than_the_file_or_not_json_is_refused(tmp_path):
    bad = tmp_path / "short.safetensors"
    bad.write_bytes((10**6).to_bytes(8, "little") + b"{}")
    with pytest.raises(ImportFormatError, match="header length"):
        read_header(bad)
    bad.write_bytes((4).to_bytes(8, "little") + b"nope")
    with pytest.raises(ImportFormatError, match="not valid JSON"):
        read_header(bad)
