"""What decode speed stock onnxruntime kernels allow on one GGUF: graph forms raced in our loop.

Forms of SmolLM2-135M-Instruct Q4_1, each converted once into .cache/bench/forms/:

* ``default``  - the importer's graph (exact Q4_1 weights, float Q/K/V, head rescored);
* ``filter``   - the same with ``head_filter`` (a 4-bit copy of the Q8_0 head picks candidates);
* ``bound``    - the cheapest graph the same file allows, for measurement only, NOT exact:
  every projection at int8 activations, the Q4_1 float minimums dropped (wrong weights),
  no rescoring. No graph that keeps the file's weights can be faster than this one;
* ``genai-int4`` - onnxruntime-genai's builder int4 pack of the same model (symmetric 4-bit
  everywhere, a 4-bit head: the builder's cheapest form, requantized, so not the file's).

Each round decodes ``--tokens`` greedy tokens with every form in turn (interleaved, so load on
a shared machine hits all alike). Reported: CPU ms per token at 1 thread (the work a token
costs; far less load-sensitive than wall time) and wall tok/s at ``--threads`` (what a user
sees, comparable with llama.cpp only on an idle machine: at load > 2 its spinning threads
collapse, and ours suffer too).

    python bench/text_gguf_forms.py [--rounds 3] [--tokens 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FORMS = ROOT / ".cache" / "bench" / "forms"


def _bound_graph():
    from desktop.engines.text.gguf.llama_graph import LlamaGraph

    class BoundGraph(LlamaGraph):
        """Measurement only: int8 activations everywhere, float minimums dropped, no rescoring."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.float_roles, self.head_rescored = frozenset(), 0

        def weight(self, *args, **kwargs):
            value = super().weight(*args, **kwargs)
            if getattr(value, "offset", None) is not None:
                value.offset = None
            return value

    return BoundGraph


def form_pack(name: str) -> Path:
    from desktop.engines.packs.pack import write_manifest
    from desktop.engines.text.gguf import convert

    out = FORMS / name
    if (out / "manifest.json").is_file():
        return out
    from bench.text import genai_builder_model, gguf_path

    out.mkdir(parents=True, exist_ok=True)
    if name == "genai-int4":  # the builder's folder, with default's manifest fields so our loop opens it
        import json

        for f in genai_builder_model("int4").iterdir():
            (out / f.name).write_bytes(f.read_bytes())
        fields = json.loads((form_pack("default") / "manifest.json").read_text())
        keep = {k: v for k, v in fields.items() if k not in ("files", "format", "schema_version")}
        roles = {"model.onnx": "decoder", "model.onnx.data": "weights", "tokenizer.json": "tokenizer", "tokenizer_config.json": "tokenizer-config", "genai_config.json": "runtime-config"}
        write_manifest(out, keep, roles)
        return out
    graph_class = convert.LlamaGraph
    if name == "bound":
        convert.LlamaGraph = _bound_graph()
    try:
        fields = convert.convert_gguf(gguf_path(), out, head_filter=name == "filter")
    finally:
        convert.LlamaGraph = graph_class
    write_manifest(out, fields, fields.pop("_roles"))
    return out


def decode(backend, prompt: list[int], tokens: int) -> tuple[float, float]:
    """(wall tok/s, CPU ms per token) of ``tokens`` - 1 greedy one-token steps."""
    backend.rewind(0)
    tok = int(np.argmax(backend.extend(prompt)))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(tokens - 1):
        tok = int(np.argmax(backend.extend([tok])))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return (tokens - 1) / wall, 1000 * cpu / (tokens - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forms", default="default,filter,bound,genai-int4")
    args = ap.parse_args()
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.genai_graph import GenaiGraphBackend

    names = args.forms.split(",")
    packs = {name: form_pack(name) for name in names}
    prompt = list(range(1000, 1032))
    cpu = {n: GenaiGraphBackend(load_pack(p), RuntimeSettings(threads=1), 4096) for n, p in packs.items()}
    wall = {n: GenaiGraphBackend(load_pack(p), RuntimeSettings(threads=args.threads), 4096) for n, p in packs.items()}
    load = os.getloadavg()[0]
    ms: dict[str, list[float]] = {n: [] for n in names}
    tps: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            ms[n].append(decode(cpu[n], prompt, args.tokens)[1])
            tps[n].append(decode(wall[n], prompt, args.tokens)[0])
    print(f"\nSmolLM2-135M-Instruct Q4_1, greedy, {args.tokens} tokens, median of {args.rounds} interleaved rounds; load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'form':12s} {'CPU ms/token (1 thread)':>24s} {'vs default':>10s} {f'wall tok/s ({args.threads} threads)':>24s}")
    base = statistics.median(ms[names[0]])
    for n in names:
        m = statistics.median(ms[n])
        print(f"{n:12s} {m:24.2f} {base / m:9.2f}x {statistics.median(tps[n]):24.1f}")


if __name__ == "__main__":
    main()
