"""Tiny local model sources and packs built on the fly for the robustness tests.

A random two-layer llama with a word-level tokenizer trained on Python's own docs is
saved as a Hugging Face folder (what a user would export from disk), then exported to a
pack by our own exporters. Nothing comes from a hub. Packs are cached under the shared
test cache keyed by this module's version, so a session builds them once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

HELPER_VERSION = "1"
# The same shared cache as tests/conftest.py's cache_dir, for scripts outside pytest.
CACHE_DEFAULT = Path(os.environ.get("ATELIER_TEST_CACHE", Path(__file__).resolve().parent.parent / ".cache" / "tests"))
SPECIALS = ["<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)][:40]


def make_tiny_llama_folder(folder: Path, seed: int = 0) -> Path:
    """A Hugging Face llama folder (config, safetensors, tokenizer) of ~100k parameters."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    eos = tok.token_to_id("<|im_end|>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=eos,
        bos_token_id=tok.token_to_id("<|endoftext|>"),
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = eos
    model.save_pretrained(str(folder))
    return folder


def export_text_pack(source: Path, out: Path, precision: str = "fp32", name: str = "tiny-llama") -> Path:
    """Run our exporters' CLI entry in-process on a local folder."""
    from exporters.__main__ import main as export_main

    code = export_main(["text", str(source), "--out", str(out), "--precision", precision, "--name", name, "--force"])
    if code != 0:
        raise RuntimeError(f"tiny export failed with exit code {code}")
    return out


def cached_tiny_text_pack(cache_dir: Path) -> Path:
    """Build (once per cache) and return a tiny exported llama text pack folder."""
    import fcntl

    root = Path(cache_dir) / f"robust-tiny-llama-v{HELPER_VERSION}"
    pack = root / "pack"
    if (pack / "manifest.json").is_file():
        return pack
    root.parent.mkdir(parents=True, exist_ok=True)
    # Several test sessions may share the cache: one builds, the others wait for it.
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (pack / "manifest.json").is_file():
            return pack
        shutil.rmtree(root, ignore_errors=True)
        src = make_tiny_llama_folder(root / "source")
        tmp = root / "pack.partial"
        export_text_pack(src, tmp)
        tmp.rename(pack)
    return pack


def cached_tiny_source(cache_dir: Path) -> Path:
    root = Path(cache_dir) / f"robust-tiny-llama-v{HELPER_VERSION}"
    if not (root / "source" / "config.json").is_file():
        cached_tiny_text_pack(cache_dir)
    return root / "source"


@pytest.fixture(scope="session")
def tiny_text_pack(cache_dir) -> Path:
    """A tiny llama pack exported by our exporters (import this fixture by name)."""
    return cached_tiny_text_pack(cache_dir)


@pytest.fixture(scope="session")
def tiny_text_source(cache_dir) -> Path:
    """The Hugging Face folder the tiny pack was exported from."""
    return cached_tiny_source(cache_dir)


if __name__ == "__main__":  # build by hand: python tests/tiny_sources.py DIR
    print(cached_tiny_text_pack(Path(sys.argv[1])))
    print(json.dumps(json.loads((cached_tiny_text_pack(Path(sys.argv[1])) / "manifest.json").read_text())["validation"]["seconds"]))
