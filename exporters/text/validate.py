"""Numerical validation of a text pack against its PyTorch fp32 source.

Three measures, on fixed prompts and a held-out English text that ships with Python:
* logits: max and mean |Δ| between ONNX and PyTorch over every prompt position;
* greedy agreement: PyTorch's greedy continuation (64 new tokens) is fed to the ONNX
  graph (teacher forcing) and we count positions where the ONNX argmax picks the same
  token; and the pack's own engine generates freely and we report how long it matches;
* perplexity on ``pydoc_data.topics`` for both, and their ratio.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

VALIDATION_PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "What is 12 times 7?",
    "Give me three tips for staying focused.",
)


def held_out_text(chars: int = 60_000) -> str:
    """English prose that ships with Python and was not written for this test."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return text[:chars]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def perplexity(logits: np.ndarray, ids: list[int]) -> tuple[float, int]:
    """(sum of NLL, count) of predicting ids[1:] from logits[:-1]."""
    lp = _log_softmax(logits[:-1])
    nll = -lp[np.arange(len(ids) - 1), np.asarray(ids[1:])]
    return float(nll.sum()), len(ids) - 1


class OnnxLogits:
    """Full-sequence logits from a KV-cache decoder graph, fed an empty cache."""

    def __init__(self, onnx_path: Path, kv_heads: int, head_dim: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.kv = (kv_heads, head_dim)

    def __call__(self, ids: list[int]) -> np.ndarray:
        n = len(ids)
        feed: dict[str, Any] = {"input_ids": np.asarray([ids], dtype=np.int64)}
        if "attention_mask" in self.inputs:
            feed["attention_mask"] = np.ones((1, n), dtype=np.int64)
        if "position_ids" in self.inputs:
            feed["position_ids"] = np.arange(n, dtype=np.int64)[None]
        for name, info in self.inputs.items():
            if name.startswith("past_key_values."):
                dtype = np.float16 if "float16" in info.type else np.float32
                feed[name] = np.zeros((1, self.kv[0], 0, self.kv[1]), dtype=dtype)
        return self.session.run(["logits"], feed)[0][0].astype(np.float32)


class TextReference:
    """PyTorch fp32 outputs, computed once per export and reused for every precision."""

    def __init__(self, model, pack_dir: Path, new_tokens: int = 64, ppl_tokens: int = 1024, window: int = 256):
        import torch
        from tokenizers import Tokenizer

        from desktop.engines.text.chat_template import ChatTemplate, find_template

        tok = Tokenizer.from_file(str(pack_dir / "tokenizer.json"))
        template = ChatTemplate(find_template(pack_dir))
        self.prompts = [tok.encode(template.render([{"role": "user", "content": p}]), add_special_tokens=False).ids for p in VALIDATION_PROMPTS]
        self.sequences, self.logits = [], []
        eos = model.generation_config.eos_token_id
        with torch.inference_mode():
            for ids in self.prompts:
                out = model.generate(
                    torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos if isinstance(eos, int) else None
                )
                seq = out[0].tolist()
                self.sequences.append(seq)
                self.logits.append(model(torch.tensor([seq])).logits[0].float().numpy())
            all_ids = tok.encode(held_out_text(), add_special_tokens=False).ids[:ppl_tokens]
            self.windows = [all_ids[i : i + window] for i in range(0, len(all_ids) - 1, window) if len(all_ids[i : i + window]) > 1]
            nll = n = 0.0
            for w in self.windows:
                s, c = perplexity(model(torch.tensor([w])).logits[0].float().numpy(), w)
                nll, n = nll + s, n + c
        self.ppl = math.exp(nll / n)
        self.tokenizer = tok


def validate_text_pack(ref: TextReference, pack_dir: Path, onnx_name: str, kv_heads: int, head_dim: int, engine_check: bool = True) -> dict[str, Any]:
    onnx = OnnxLogits(pack_dir / onnx_name, kv_heads, head_dim)
    max_diff = mean_diff = 0.0
    agree = total = 0
    for prompt, seq, ref_logits in zip(ref.prompts, ref.sequences, ref.logits):
        got = onnx(seq)
        p = len(prompt)
        diff = np.abs(got[:p] - ref_logits[:p])
        max_diff = max(max_diff, float(diff.max()))
        mean_diff += float(diff.mean()) / len(ref.prompts)
        # position t predicts token t+1: compare argmax over the generated span
        predicted = got[p - 1 : len(seq) - 1].argmax(-1)
        agree += int((predicted == np.asarray(seq[p:])).sum())
        total += len(seq) - p
    nll = n = 0.0
    for w in ref.windows:
        s, c = perplexity(onnx(w), w)
        nll, n = nll + s, n + c
    ppl = math.exp(nll / n)
    del onnx
    report: dict[str, Any] = {
        "prompts": len(ref.prompts),
        "max_abs_logit_diff": round(max_diff, 5),
        "mean_abs_logit_diff": round(mean_diff, 5),
        "teacher_forced_agreement": round(agree / max(total, 1), 4),
        "agreement_tokens": total,
        "perplexity": round(ppl, 4),
        "reference_perplexity": round(ref.ppl, 4),
        "perplexity_ratio": round(ppl / ref.ppl, 4),
        "perplexity_tokens": int(n),
        "perplexity_text": "pydoc_data.topics (Python's bundled documentation)",
    }
    if engine_check:
        report.update(_free_running(ref, pack_dir))
    return report


def _free_running(ref: TextReference, pack_dir: Path) -> dict[str, Any]:
    """Greedy generation with the pack's real engine, compared token by token."""
    from desktop.engines.events import Done, Token
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest, TextEngine

    engine = TextEngine(load_pack(pack_dir, verify_hashes=False))
    matches, answers = [], []
    try:
        for prompt_text, prompt, seq in zip(VALIDATION_PROMPTS, ref.prompts, ref.sequences):
            engine.reset_cache()
            ids: list[int] = []
            reason = ""
            req = ChatRequest([{"role": "user", "content": prompt_text}], max_tokens=len(seq) - len(prompt) or 1, sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))
            text = ""
            for ev in engine.generate(req):
                if isinstance(ev, Token):
                    text += ev.text
                    if ev.token_id is not None:
                        ids.append(ev.token_id)
                elif isinstance(ev, Done):
                    reason = ev.finish_reason
            if reason == "eos":
                ids.append(-1)  # mark EOS so it compares with the reference's EOS token
            want = seq[len(prompt) :]
            want = [t if t not in engine.eos_ids else -1 for t in want]
            k = 0
            while k < min(len(ids), len(want)) and ids[k] == want[k]:
                k += 1
            matches.append(k / max(len(want), 1))
            answers.append({"prompt": prompt_text, "answer": text, "finish": reason, "reference": ref.tokenizer.decode(seq[len(prompt) :])})
    finally:
        engine.close()
    return {"greedy_prefix_match": round(float(np.mean(matches)), 4), "answers": answers}


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}
