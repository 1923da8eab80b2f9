"""GGUF import quality per quant type: one table, a row per llama.cpp type.

Every row is the same model (SmolLM2-135M-Instruct) quantized by llama.cpp's own quantizer
to one type, imported with the direct GGUF path (``convert_gguf``) in the default mode and
the exact (all-float activations) mode, and compared with transformers' float evaluation
of THAT file's dequantized weights (``from_pretrained(gguf_file=...)``). So each number
is the import's fidelity to the file, not the file's fidelity to the original model:

* agreement: teacher-forced greedy agreement over the exporters' validation prompts
  (transformers' 64-token greedy continuation of each, the pack's argmax compared per
  position; ``exporters.text.validate``, the same measure every text export reports);
* ppl ratio: perplexity of ours / transformers' on 1024 tokens of Python's bundled docs
  (4 windows of 256);
* max |dlogit| over the prompts' positions.

The default mode rounds activations to int8 (per block of 32) for most projections; the exact
mode keeps them float, so exact - default isolates activation rounding, and exact alone
shows what the weights' storage costs (0 for types stored exactly).

Source: an F32 GGUF made from the shipped Q4_1 file (its weights dequantized: fine for
measuring format fidelity), quantized with llama-cpp-python's ``llama_model_quantize`` in a
bench-only venv (``--llama-python``). Files are cached under ``.cache/bench/gguf-types/``.

    python bench/gguf_quality.py [--types Q8_0,Q4_K_M] [--no-exact] [--llama-python PATH] [--json F]
    python bench/gguf_quality.py --types Q8_0 --no-exact --sweep "roles:qkv,down;roles:"   # float roles
    python bench/gguf_quality.py --table F1.json F2.json   # one table from runs done in parts
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gguf_import import convert, smollm2_gguf  # noqa: E402

CACHE = ROOT / ".cache/bench/gguf-types"
TYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "Q3_K_M", "Q2_K")
FLOORS = {"agreement": 0.98, "ppl_ratio": 1.005}
# convert_gguf options per mode; --sweep adds "roles:a,b" (float activations for those
# projections: qkv, o, gate_up, down; the head keeps its float-rescored candidates)
MODES = {"fast": {}, "exact": {"exact_activations": True}}

# Runs in the llama-cpp-python venv: that package is a bench tool, never an app dependency.
QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3])
p.nthread = 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def f32_source(q4_1: Path) -> Path:
    """The shipped Q4_1 file with every tensor dequantized to F32 (same metadata)."""
    out = CACHE / "smollm2-F32.gguf"
    if out.is_file():
        return out
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(q4_1)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(tmp, reader.fields["general.architecture"].contents())
    for f in reader.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        if f.name == "general.file_type":
            writer.add_key_value(f.name, 0, gguf.GGUFValueType.UINT32)
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(f.name, f.contents(), f.types[0], sub)
    for t in reader.tensors:
        data = dequantize(np.array(t.data), t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data.reshape(tuple(reversed([int(x) for x in t.shape]))))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    return out


def quantized(f32: Path, kind: str, llama_python: str) -> Path:
    out = CACHE / f"smollm2-{kind}.gguf"
    if out.is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    run = subprocess.run([llama_python, "-c", QUANTIZE, str(f32), str(tmp), kind], capture_output=True, text=True)
    if run.returncode or not tmp.is_file():
        sys.exit(f"llama.cpp could not quantize to {kind}: {run.stderr.strip().splitlines()[-3:]}")
    os.replace(tmp, out)
    return out


def mode_options(mode: str) -> dict:
    if mode.startswith("roles:"):
        return {"float_roles": [r for r in mode[6:].split(",") if r]}
    return MODES[mode]


def measure(src: Path, modes: list[str], work: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from exporters.text.validate import TextReference, validate_text_pack

    # The reference's speed is not measured, and on a shared, oversubscribed machine a second
    # torch thread mostly waits at barriers for a descheduled partner (minutes per type).
    torch.set_num_threads(1)

    row: dict = {"file_mib": src.stat().st_size / 2**20}
    packs = {}
    for mode in modes:
        packs[mode] = work / f"{src.stem}-{mode}"
        cost = convert(src, packs[mode], mode_options(mode))
        manifest = json.loads((packs[mode] / "manifest.json").read_text())
        row[mode] = {"seconds": cost["seconds"], "pack_mib": sum(p.stat().st_size for p in packs[mode].iterdir()) / 2**20}
        row["mix"] = manifest["config"]["quantization"]["source_types"]
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32).eval()
    first = packs[modes[0]]
    cfg = json.loads((first / "genai_config.json").read_text())["model"]["decoder"]
    t1 = time.perf_counter()
    ref = TextReference(model, first)
    print(f"  {src.stem}: transformers load {t1 - t:.0f} s, reference {time.perf_counter() - t1:.0f} s", flush=True)
    del model
    gc.collect()
    for mode, pack in packs.items():
        r = validate_text_pack(ref, pack, "model.onnx", cfg["num_key_value_heads"], cfg["head_size"], engine_check=False)
        row[mode].update(agreement=r["teacher_forced_agreement"], tokens=r["agreement_tokens"], ppl=r["perplexity"], ppl_ratio=r["perplexity_ratio"], max_dlogit=r["max_abs_logit_diff"])
    row["ref_ppl"] = ref.ppl
    return row


def table(rows: dict[str, dict], modes: list[str]) -> str:
    head = "| GGUF type | file MiB | quant mix (tensors) | import s | pack MiB | agreement | ppl ratio | max \\|Δlogit\\| |"
    if "exact" in modes:
        head += " exact: agreement | exact: ppl ratio | exact: max \\|Δlogit\\| |"
    lines = [head, "|" + "---|" * (head.replace("\\|", "").count("|") - 1)]
    for kind, row in rows.items():
        d = row[modes[0]]
        mix = ", ".join(f"{k} {v}" for k, v in sorted(row["mix"].items(), key=lambda kv: -kv[1]))
        miss = lambda v, floor, low: f"**{v:.{3 if low else 4}f}**" if (v < floor if low else v > floor) else f"{v:.{3 if low else 4}f}"  # noqa: E731
        line = f"| {kind} | {row['file_mib']:.1f} | {mix} | {d['seconds']:.1f} | {d['pack_mib']:.1f} | {miss(d['agreement'], FLOORS['agreement'], True)} | {miss(d['ppl_ratio'], FLOORS['ppl_ratio'], False)} | {d['max_dlogit']:.3f} |"
        if "exact" in modes:
            e = row["exact"]
            line += f" {miss(e['agreement'], FLOORS['agreement'], True)} | {miss(e['ppl_ratio'], FLOORS['ppl_ratio'], False)} | {e['max_dlogit']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--no-exact", action="store_true", help="default mode only (half the conversions)")
    ap.add_argument("--llama-python", default="/work/llamacpp-venv/bin/python", help="a python with llama-cpp-python (bench-only)")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    ap.add_argument("--table", type=Path, nargs="*", help="only print the table from --json files of earlier runs")
    ap.add_argument("--sweep", default="", help="extra modes, ';'-separated, e.g. 'roles:qkv,down;roles:' (printed after the table)")
    args = ap.parse_args()
    modes = ["fast"] if args.no_exact else ["fast", "exact"]
    modes += [m for m in args.sweep.split(";") if m]
    if args.table:
        rows = {k: v for path in args.table for k, v in json.loads(path.read_text()).items()}
        print(table({k: rows[k] for k in TYPES if k in rows}, modes))
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"load {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs", flush=True)
    f32 = f32_source(smollm2_gguf())
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.types.split(","):
            src = quantized(f32, kind, args.llama_python)
            rows[kind] = measure(src, modes, Path(tmp))
            d = rows[kind][modes[0]]
            print(f"{kind}: agreement {d['agreement']:.3f} ppl ratio {d['ppl_ratio']:.4f} " + (f"(exact {rows[kind]['exact']['agreement']:.3f} / {rows[kind]['exact']['ppl_ratio']:.4f})" if "exact" in modes else ""), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(f"\nfloors: agreement >= {FLOORS['agreement']}, ppl ratio <= {FLOORS['ppl_ratio']} (misses in bold); "
          f"{next(iter(rows.values()))[modes[0]]['tokens']} agreement tokens, 1024 ppl tokens")
    print(table(rows, modes))
    for mode in (m for m in modes if m not in MODES):
        print(f"\n{mode}: " + "; ".join(f"{k} agreement {r[mode]['agreement']:.3f}, ppl ratio {r[mode]['ppl_ratio']:.4f}, max |dlogit| {r[mode]['max_dlogit']:.3f}" for k, r in rows.items()))
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
