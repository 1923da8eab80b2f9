"""Decode race on one GGUF: our direct import vs llama.cpp (llama-cpp-python), same file,
2 threads, greedy, N new tokens, rounds interleaved so load on a shared machine hits both.

llama-cpp-python lives in its own environment (built from source with native CPU flags), so
it runs as a child process of that interpreter that answers one JSON line per round. Both
sides are timed the same way: prompt in (TTFT = prompt processing + first logits), then one
token at a time by argmax, no sampler; prefill tok/s is a ~500-token prompt in one call.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
from llama_cpp import Llama
path, threads = sys.argv[1], int(sys.argv[2])
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=2048, n_batch=512, verbose=False)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(job["prompt"])
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t1 = time.perf_counter()
    for _ in range(job["tokens"] - 1):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t2 = time.perf_counter()
    llm.reset()
    t3 = time.perf_counter()
    llm.eval(job["long"])
    t4 = time.perf_counter()
    print(json.dumps({"ttft": t1 - t0, "decode": (job["tokens"] - 1) / (t2 - t1), "prefill": len(job["long"]) / (t4 - t3)}), flush=True)
"""


class LlamaCpp:
    def __init__(self, python: Path, gguf: Path, threads: int = 2):
        self.proc = subprocess.Popen([str(python), "-c", CHILD, str(gguf), str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if not json.loads(self.proc.stdout.readline() or "{}").get("ready"):
            raise RuntimeError("llama-cpp-python could not load the GGUF (see its message above)")

    def round(self, prompt: list[int], long: list[int], tokens: int) -> dict:
        self.proc.stdin.write(json.dumps({"prompt": prompt, "long": long, "tokens": tokens}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def ours_round(backend, prompt: list[int], long: list[int], tokens: int) -> dict:
    backend.rewind(0)
    t0 = time.perf_counter()
    tok = int(np.argmax(backend.extend(prompt)))
    t1 = time.perf_counter()
    for _ in range(tokens - 1):
        tok = int(np.argmax(backend.extend([tok])))
    t2 = time.perf_counter()
    backend.rewind(0)
    t3 = time.perf_counter()
    backend.extend(long)
    t4 = time.perf_counter()
    return {"ttft": t1 - t0, "decode": (tokens - 1) / (t2 - t1), "prefill": len(long) / (t4 - t3)}


def gguf_pack(gguf: Path, cache: Path) -> Path:
    """The GGUF imported once by our direct converter (default activations)."""
    from desktop.engines.packs.pack import write_manifest
    from desktop.engines.text.gguf.convert import convert_gguf

    out = cache / f"gguf-direct-{gguf.stem}"
    if not (out / "manifest.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        fields = convert_gguf(gguf, out)
        write_manifest(out, fields, fields.pop("_roles"))
    return out


def race(llama_python: Path | None, gguf: Path, cache: Path, prompt_text: str, long_text: str, tokens: int, rounds: int) -> list[tuple[str, dict]]:
    """Rows for bench/text.py: ours on the GGUF and, when the environment exists, llama.cpp."""
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings
    from desktop.engines.text.backends import open_backend
    from desktop.engines.text.engine import TextEngine

    pack = load_pack(gguf_pack(gguf, cache))
    engine = TextEngine(pack, RuntimeSettings(threads=2))
    prompt = engine.tokenizer.encode(engine.template.render([{"role": "user", "content": prompt_text}]), add_special_tokens=False).ids
    long = engine.tokenizer.encode(long_text, add_special_tokens=False).ids
    engine.close()
    backend = open_backend(pack, RuntimeSettings(threads=2), 4096)
    other = None
    if llama_python is None or not Path(llama_python).is_file():
        print(f"llama.cpp row skipped: no llama-cpp-python interpreter at {llama_python} (pass --llama-python PATH)", file=sys.stderr)
    elif subprocess.run([str(llama_python), "-c", "import llama_cpp"], capture_output=True).returncode:
        print(f"llama.cpp row skipped: {llama_python} cannot import llama_cpp (install llama-cpp-python into that environment)", file=sys.stderr)
    else:
        try:
            other = LlamaCpp(Path(llama_python), gguf)
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"llama.cpp row skipped: {exc}", file=sys.stderr)
    runs: dict[str, list[dict]] = {"ours": [], "llama.cpp": []}
    try:
        for _ in range(rounds):
            runs["ours"].append(ours_round(backend, prompt, long, tokens))
            if other is not None:
                runs["llama.cpp"].append(other.round(prompt, long, tokens))
    finally:
        backend.close()
        if other is not None:
            other.close()
    name = gguf.name
    rows = [(f"Atelier, GGUF imported directly ({name})", _median(runs["ours"]))]
    if runs["llama.cpp"]:
        rows.append((f"llama.cpp via llama-cpp-python ({name})", _median(runs["llama.cpp"])))
        # each round's ratio: both sides ran back to back under the same load, so these
        # ratios move far less than the tok/s themselves on a shared machine
        rows[0][1]["vs_llamacpp"] = {key: statistics.median(o[key] / t[key] for o, t in zip(runs["ours"], runs["llama.cpp"])) for key in ("decode", "prefill")}
    return rows


def _median(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}
