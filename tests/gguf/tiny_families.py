"""Tiny random models of each family (transformers config classes) written as GGUF files the
way llama.cpp's convert_hf_to_gguf lays them out, for the family tests. Never a hub."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.gguf.tiny_gguf import _permute, add_matrix, add_tokenizer, finish

# small windows so a 7-token prompt + 20 new tokens crosses them
WINDOW = 8


def tiny_family(family: str, seed: int = 0, std: float = 0.25):
    """(model, tokenizer) for ``family``: llama, mistral, qwen3, phi3, gemma2, gemma3."""
    import torch
    import transformers as tf

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    common = dict(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        initializer_range=std, rms_norm_eps=1e-6, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )
    if family == "mistral":
        cfg, cls = tf.MistralConfig(num_hidden_layers=2, sliding_window=None, rope_theta=10000.0, **common), tf.MistralForCausalLM
    elif family == "qwen3":
        cfg, cls = tf.Qwen3Config(num_hidden_layers=2, head_dim=32, rope_theta=1000000.0, **common), tf.Qwen3ForCausalLM
    elif family == "phi3":
        cfg, cls = tf.Phi3Config(num_hidden_layers=2, rope_theta=10000.0, **common), tf.Phi3ForCausalLM
    elif family == "gemma2":
        cfg, cls = tf.Gemma2Config(num_hidden_layers=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=WINDOW, attn_logit_softcapping=50.0, final_logit_softcapping=30.0, **common), tf.Gemma2ForCausalLM
    elif family == "gemma3":
        cfg = tf.Gemma3TextConfig(num_hidden_layers=6, head_dim=16, query_pre_attn_scalar=16, sliding_window=WINDOW, rope_theta=1000000.0, rope_local_base_freq=10000.0, **common)
        cls = tf.Gemma3ForCausalLM
    else:
        raise ValueError(family)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    with torch.no_grad():  # norms start at 1 (or 0 for Gemma's 1 + w): make them matter
        for name, param in model.named_parameters():
            if "norm" in name:
                param.normal_(0.0 if family.startswith("gemma") else 1.0, 0.2)
    return model, tok


def write_family_gguf(model, tok, path: Path, family: str, qtype: str = "F32") -> Path:
    import gguf

    cfg = model.config
    arch = "llama" if family == "mistral" else family
    kind = gguf.GGMLQuantizationType[qtype]
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{family}")  # "mistral" in the name: transformers reads a llama file as Mistral
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    theta = getattr(cfg, "rope_theta", None) or (cfg.rope_parameters.get("rope_theta") if "rope_theta" in cfg.rope_parameters else cfg.rope_parameters["full_attention"]["rope_theta"])
    w.add_rope_freq_base(float(theta))
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_vocab_size(cfg.vocab_size)
    if family.startswith("gemma"):
        w.add_sliding_window(cfg.sliding_window)
        if cfg.final_logit_softcapping:
            w.add_final_logit_softcapping(cfg.final_logit_softcapping)
        if getattr(cfg, "attn_logit_softcapping", None):
            w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
    add_tokenizer(w, tok)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    def matrix(name, array):
        add_matrix(w, name, array, kind, seed=sum(map(ord, name)))

    def norm(name, array):  # llama.cpp stores Gemma's norms with its "1 +" added
        w.add_tensor(name, np.ascontiguousarray(array + 1.0 if family.startswith("gemma") else array, np.float32))

    matrix("token_embd.weight", sd["model.embed_tokens.weight"])
    gemma = family.startswith("gemma")
    for i in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        norm(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        if family == "phi3":
            matrix(b + "attn_qkv.weight", sd[p + "self_attn.qkv_proj.weight"])
        else:
            permute = _permute if arch == "llama" else (lambda a, n: a)
            matrix(b + "attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], heads))
            matrix(b + "attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], kv))
            matrix(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        for x in "qk":
            if p + f"self_attn.{x}_norm.weight" in sd:
                norm(b + f"attn_{x}_norm.weight", sd[p + f"self_attn.{x}_norm.weight"])
        matrix(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        if gemma:
            norm(b + "post_attention_norm.weight", sd[p + "post_attention_layernorm.weight"])
            norm(b + "ffn_norm.weight", sd[p + "pre_feedforward_layernorm.weight"])
            norm(b + "post_ffw_norm.weight", sd[p + "post_feedforward_layernorm.weight"])
        else:
            norm(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        if family == "phi3":
            matrix(b + "ffn_up.weight", sd[p + "mlp.gate_up_proj.weight"])
        else:
            matrix(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
            matrix(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        matrix(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    norm("output_norm.weight", sd["model.norm.weight"])
    if "lm_head.weight" in sd and not cfg.tie_word_embeddings:
        matrix("output.weight", sd["lm_head.weight"])
    finish(w)
    return path


def as_in_file(model, qtype: str):
    """``model`` with every matrix replaced by what a ``qtype`` GGUF of it dequantizes to:
    the reference for families whose GGUF transformers cannot read back."""
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    kind = GGMLQuantizationType[qtype]
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                array = param.detach().float().numpy()
                param.copy_(torch.from_numpy(dequantize(quantize(np.ascontiguousarray(array), kind), kind).reshape(array.shape)))
    return model
