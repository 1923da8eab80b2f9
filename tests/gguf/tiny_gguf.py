"""Tiny random llama models written as real GGUF files (gguf's own writer and quantizer),
the way llama.cpp's convert_hf_to_gguf lays them out: Q/K rows permuted for interleaved
rotary, norms in F32, the tokenizer as ``tokenizer.ggml.*`` metadata. Never a hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_llama(seed: int = 0, tied: bool = False, std: float = 0.25, hidden: int = 64, ffn: int = 128, layers: int = 2, arch: str = "llama"):
    """A small random LlamaForCausalLM; weights larger than the default init so greedy
    decoding is decided by clear margins rather than by rounding noise."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    config_class, model_class = (Qwen2Config, Qwen2ForCausalLM) if arch == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    cfg = config_class(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, tie_word_embeddings=tied, initializer_range=std, rms_norm_eps=1e-5, rope_theta=10000.0,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )
    model = model_class(cfg).eval()
    if arch == "qwen2":  # biases start at zero: make them matter
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias")):
                    param.normal_(0, std)
    return model, tok


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    # convert_hf_to_gguf's LlamaModel.permute: HF rotate-half rows -> llama.cpp interleaved pairs
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, tok, path: Path, qtype: str = "F32", chat_template: str | None = CHATML, extra: dict | None = None, file_arch: str | None = None) -> Path:
    """Write ``model`` (HF llama) + byte-level BPE ``tok`` as a GGUF with 2D weights in ``qtype``;
    ``file_arch`` names another llama-shaped architecture in the file (mistral3)."""
    import gguf

    cfg = model.config
    kind = gguf.GGMLQuantizationType[qtype]
    arch = cfg.model_type  # "llama" or "qwen2"
    w = gguf.GGUFWriter(str(path), file_arch or arch)
    w.add_name("tiny-llama")
    w.add_license("apache-2.0")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(int(kind))
    add_tokenizer(w, tok)
    w.add_pad_token_id(tok.pad_token_id)
    if chat_template:
        w.add_chat_template(chat_template)
    for key, value in (extra or {}).items():
        w.add_key_value(key, value[0], value[1])
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    def matrix(name, array):
        add_matrix(w, name, array, kind, seed=len(name) * 7919 + sum(map(ord, name)))

    matrix("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        permute = _permute if arch == "llama" else (lambda w, heads: w)  # qwen2 files keep NeoX order
        matrix(b + "attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads))
        matrix(b + "attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads))
        for x in "qkv":
            if p + f"self_attn.{x}_proj.bias" in sd:
                w.add_tensor(b + f"attn_{x}.bias", sd[p + f"self_attn.{x}_proj.bias"])
        matrix(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        matrix(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        matrix(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        matrix(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        matrix(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        matrix("output.weight", sd["lm_head.weight"])
    finish(w)
    return path


def add_tokenizer(w, tok) -> None:
    """``tok`` (byte-level BPE) as ``tokenizer.ggml.*`` metadata, as convert_hf_to_gguf writes it."""
    spec = json.loads(tok.backend_tokenizer.to_str())
    tokens = [t for t, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])]
    specials = {a["content"] for a in spec["added_tokens"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_add_bos_token(False)


def add_matrix(w, name: str, array: np.ndarray, kind, seed: int) -> None:
    """A 2D weight in ``kind``: gguf's own quantizer where it has one, else random blocks of
    that type (K-quants, IQ types: gguf reads them but cannot write them)."""
    import gguf
    from gguf.quants import quantize

    if kind == gguf.GGMLQuantizationType.F32:
        w.add_tensor(name, np.ascontiguousarray(array, np.float32))
    elif kind == gguf.GGMLQuantizationType.F16:
        w.add_tensor(name, np.ascontiguousarray(array, np.float16))
    else:
        data = random_k_blocks(kind, *array.shape, seed=seed) if kind.name in K_QUANT_SCALES else quantize(np.ascontiguousarray(array, np.float32), kind)
        w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)


def finish(w) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# type gguf can read but not write -> {offset of an fp16 field: its range}: weights ~0.1-0.3
# in size, centred for the K-quants (the minimum, dmin * m, offsets the mean of d * sc * q).
# The last six have no MatMulNBits form: the importer stores them at 8 bits.
K_QUANT_SCALES = {
    "Q4_K": {0: 2e-4, 2: 1.5e-3}, "Q5_K": {0: 1e-4, 2: 1.55e-3}, "Q6_K": {208: 4e-5},
    "Q2_K": {80: 1e-2, 82: 1.4e-2}, "Q3_K": {108: 4e-3}, "IQ4_NL": {0: 2.6e-3}, "IQ4_XS": {0: 1.5e-4}, "IQ2_XXS": {0: 3e-3}, "IQ3_S": {0: 1.2e-3},
}


def random_k_blocks(kind, rows: int, cols: int, seed: int) -> np.ndarray:
    from gguf.constants import GGML_QUANT_SIZES

    rng = np.random.default_rng(seed)
    per, size = GGML_QUANT_SIZES[kind]
    raw = rng.integers(0, 256, (rows, cols // per, size), dtype=np.uint8)
    for off, top in K_QUANT_SCALES[kind.name].items():
        raw[..., off : off + 2] = rng.uniform(0, top, raw.shape[:2]).astype(np.float16).view(np.uint8).reshape(*raw.shape[:2], 2)
    return raw.reshape(rows, -1)


def hf_from_gguf(path: Path):
    """What transformers makes of the file: the reference (weights dequantized to fp32)."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


def hf_greedy(model, prompt: list[int], n: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def pack_greedy(pack_dir: Path, prompt: list[int], n: int) -> list[int]:
    """Greedy tokens from the converted pack through the app's own genai backend."""
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend

    backend = open_backend(load_pack(pack_dir), RuntimeSettings(), 512)
    try:
        logits, out = backend.extend(prompt), []
        for _ in range(n):
            out.append(int(np.argmax(logits)))
            logits = backend.extend([out[-1]])
        return out
    finally:
        backend.close()
