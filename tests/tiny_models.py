"""Tiny random models built from config classes (never a hub), and their exported packs."""

from __future__ import annotations

import shutil
from pathlib import Path

TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer():
    """A byte-level BPE trained on Python's bundled docs: deterministic and offline."""
    from pydoc_data.topics import topics
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [topics[k] for k in sorted(topics)][:60]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=TINY_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>", pad_token="<|endoftext|>")


def tiny_hf_model(kind: str, folder: Path) -> Path:
    """Write a tiny random ``kind`` (llama | gpt2) causal LM + tokenizer to ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    common = dict(vocab_size=len(tok), eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_positions=256, n_embd=32, n_layer=2, n_head=4, **common))
    elif kind == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False, **common)
        )
    else:
        raise ValueError(kind)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def export_tiny(kind: str, root: Path, precision: str = "fp32") -> Path:
    """Export a tiny model to a pack with our exporters; returns the pack folder."""
    import exporters

    src_dir = root / f"hf-{kind}"
    if not (src_dir / "config.json").is_file():
        tiny_hf_model(kind, src_dir)
    out = root / f"pack-{kind}-{precision}"
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    return exporters.export("text", src_dir, out, precision, name=f"tiny-{kind}-{precision}", force=True)
