"""One graph of an exported image pack, timed per call: the UNet (or VAE decoder) alone,
under variants of the same graph, each in a fresh process, rounds interleaved.

The image benchmark (bench/image.py) measures whole images; on a shared 2-core machine a
20-step SD 1.5 image takes many minutes per row. The questions "what does fusing attention
buy" and "which session options help" only need the graph's own call time, so this loads
one graph through the engine's own session factory (make_image_session: the options a
user's generation gets) and times ``--calls`` calls at the shapes of a real generation
(UNet: batch 2 for classifier-free guidance, 512x512 images = 64x64 latents).

Variants (``--variants``, comma-separated):

* ``fused``          the exported graph (attention as com.microsoft.MultiHeadAttention,
                     which ONNX Runtime's CPU kernel runs as MLAS flash attention)
* ``unfused-kernel`` the same graph with ORT_DISABLE_FLASH_ATTENTION=1: the kernel's
                     plain path, which materialises every [heads, S, S] score matrix
* ``unfused-graph``  each MultiHeadAttention rewritten back to Transpose/MatMul/Softmax/
                     MatMul (what a plain torch.onnx export of diffusers' attention gives);
                     written beside the graph, sharing its external weights
* ``spin``           worker threads spin between operators (the engine turns it off)
* ``no-mem-pattern`` / ``no-arena``  ORT's memory planning / CPU arena off

``--profile`` writes ORT's profile of one call and prints the time per operator type.

    nice python bench/image_unet_call.py PACK [--component unet] [--variants fused,unfused-kernel] [--rounds 3] [--calls 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.image_scale import json_child  # noqa: E402

VARIANTS = ("fused", "unfused-kernel", "unfused-graph", "spin", "no-mem-pattern", "no-arena")


def unfused_graph(graph: Path) -> Path:
    """``graph`` with every MultiHeadAttention spelled out as plain ONNX ops (built once);
    the weights stay in the original external-data files (same folder, same names)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = graph.with_name("model-unfused.onnx")
    if out.is_file():
        return out
    model = onnx.load(str(graph), load_external_data=False)
    nodes, extra = [], []
    for i, n in enumerate(model.graph.node):
        if n.op_type != "MultiHeadAttention":
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        heads, p = attrs["num_heads"], f"unfused{i}_"
        q, k, v = n.input[:3]
        split = numpy_helper.from_array(np.array([0, 0, heads, -1], dtype="int64"), p + "split")
        merge = numpy_helper.from_array(np.array([0, 0, -1], dtype="int64"), p + "merge")
        extra += [split, merge]
        scale = attrs.get("scale")
        nodes += [
            helper.make_node("Reshape", [q, split.name], [p + "q4"]), helper.make_node("Transpose", [p + "q4"], [p + "qt"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [k, split.name], [p + "k4"]), helper.make_node("Transpose", [p + "k4"], [p + "kt"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [v, split.name], [p + "v4"]), helper.make_node("Transpose", [p + "v4"], [p + "vt"], perm=[0, 2, 1, 3]),
            helper.make_node("MatMul", [p + "qt", p + "kt"], [p + "scores"]),
        ]
        if scale is None:  # the kernel's default: 1/sqrt(head size), known only at run time here
            raise SystemExit("unfused-graph needs MultiHeadAttention nodes with an explicit scale")
        scale_t = numpy_helper.from_array(np.array(scale, dtype="float32"), p + "scale")
        extra.append(scale_t)
        nodes += [
            helper.make_node("Mul", [p + "scores", scale_t.name], [p + "scaled"]),
            helper.make_node("Softmax", [p + "scaled"], [p + "probs"], axis=-1),
            helper.make_node("MatMul", [p + "probs", p + "vt"], [p + "ctx"]),
            helper.make_node("Transpose", [p + "ctx"], [p + "ctxt"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [p + "ctxt", merge.name], [n.output[0]]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(extra)
    tmp = out.with_suffix(".partial")
    onnx.save(model, str(tmp))
    tmp.rename(out)
    return out


def feeds(session, component: str, latent: int, batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    out = {}
    for inp in session.get_inputs():
        shape = []
        for d, size in enumerate(inp.shape):
            if isinstance(size, int):
                shape.append(size)
            elif d == 0:
                shape.append(batch)
            else:
                shape.append(latent)  # height / width of a latent
        if inp.name == "encoder_hidden_states" and not isinstance(inp.shape[1], int):
            shape[1] = 77
        if inp.name == "timestep":
            out[inp.name] = np.full(shape, 500, dtype=types[inp.type])
        else:
            out[inp.name] = rng.standard_normal(shape).astype(types[inp.type])
    return out


def measure(pack: Path, component: str, variant: str, calls: int, latent: int, batch: int, threads: int, profile: bool) -> dict:
    from desktop.engines.image.pipelines import make_image_session
    from desktop.engines.providers import RuntimeSettings
    import desktop.engines.providers as providers

    graph = pack / component / "model.onnx"
    if variant == "unfused-graph":
        graph = unfused_graph(graph)
    base = providers.session_options

    def options(settings):  # the engine's options, then the variant's one change
        opts = base(settings)
        if variant == "no-mem-pattern":
            opts.enable_mem_pattern = False
        if variant == "no-arena":
            opts.enable_cpu_mem_arena = False
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"ort-{component}-{variant}")
        return opts

    providers.session_options = options
    t = time.perf_counter()
    if variant == "spin":  # the engine's factory turns spinning off: the same options without that
        import onnxruntime as ort

        opts = options(RuntimeSettings(provider="cpu", threads=threads))
        session = ort.InferenceSession(str(graph), sess_options=opts, providers=["CPUExecutionProvider"])
    else:
        session, _ = make_image_session(graph, RuntimeSettings(provider="cpu", threads=threads))
    load = time.perf_counter() - t
    inputs = feeds(session, component, latent, batch)
    session.run(None, inputs)  # warm-up: allocations at these shapes
    times, cpu = [], []
    for _ in range(calls):
        t, c = time.perf_counter(), time.process_time()
        session.run(None, inputs)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    # CPU seconds: both threads' time, the figure least moved by other programs' load
    result = {"seconds_per_call": statistics.median(times), "cpu_seconds_per_call": statistics.median(cpu), "load_seconds": load, "peak_rss": _peak_rss()}
    if profile:
        result["profile"] = by_op_type(session.end_profiling())
    return result


def by_op_type(trace: str) -> dict[str, float]:
    """Seconds per operator type over the profiled calls (ORT's Chrome trace)."""
    totals: dict[str, float] = {}
    for ev in json.loads(Path(trace).read_text()):
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            op = ev.get("args", {}).get("op_name", "?")
            totals[op] = totals.get(op, 0.0) + ev["dur"] / 1e6
    Path(trace).unlink(missing_ok=True)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def in_subprocess(args, variant: str) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_FLASH_ATTENTION"}
    if variant == "unfused-kernel":  # read when the kernel is created, so per process
        env["ORT_DISABLE_FLASH_ATTENTION"] = "1"
    cmd = [sys.executable, __file__, str(args.pack), "--component", args.component, "--calls", str(args.calls), "--latent", str(args.latent),
           "--batch", str(args.batch), "--threads", str(args.threads), "--child", variant] + (["--profile"] if args.profile else [])
    return json_child(cmd, env, variant)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pack", type=Path, help="a pack folder (our export, or an imported one)")
    p.add_argument("--component", default="unet", help="unet, vae_decoder, vae_encoder, text_encoder")
    p.add_argument("--variants", default="fused,unfused-kernel", help=f"comma-separated: {', '.join(VARIANTS)}")
    p.add_argument("--rounds", type=int, default=2, help="each variant this many times, alternating the order; the best is kept")
    p.add_argument("--calls", type=int, default=2, help="timed calls per process after one warm-up call (median)")
    p.add_argument("--latent", type=int, default=64, help="latent side (64: 512x512 images of an x8 VAE)")
    p.add_argument("--batch", type=int, default=2, help="2: classifier-free guidance's batched call")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="also print seconds per operator type")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.pack, args.component, args.child, args.calls, args.latent, args.batch, args.threads, args.profile)))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants if r % 2 == 0 else reversed(variants):
            got = in_subprocess(args, v)
            if got:
                got["load_average"] = os.getloadavg()[0]
                results[v].append(got)
                print(f"round {r + 1} {v}: {got['seconds_per_call']:.3f} s/call, {got['cpu_seconds_per_call']:.3f} CPU s (load {got['load_average']:.1f})", file=sys.stderr)
    print(f"\n{args.pack.name}/{args.component}, batch {args.batch}, latent {args.latent}x{args.latent}, {args.threads} threads; best of {args.rounds} round(s), median of {args.calls} call(s)")
    print(f"{'variant':16s} {'s/call':>8s} {'CPU s/call':>11s} {'vs first':>9s} {'CPU vs first':>13s} {'peak RSS':>9s} {'loads seen':>12s}")
    first = min(results[variants[0]], key=lambda x: x["seconds_per_call"]) if results[variants[0]] else None
    for v in variants:
        if not results[v]:
            print(f"{v:16s} {'failed':>8s}")
            continue
        best = min(results[v], key=lambda x: x["seconds_per_call"])
        ratio = f"{first['seconds_per_call'] / best['seconds_per_call']:.2f}x" if first else "-"
        cpu_best = min(x["cpu_seconds_per_call"] for x in results[v])
        cpu_ratio = f"{min(x['cpu_seconds_per_call'] for x in results[variants[0]]) / cpu_best:.2f}x" if first else "-"
        loads = "/".join(f"{x['load_average']:.1f}" for x in results[v])
        print(f"{v:16s} {best['seconds_per_call']:8.3f} {cpu_best:11.3f} {ratio:>9s} {cpu_ratio:>13s} {best['peak_rss'] / 2**30:7.1f} GiB {loads:>12s}")
        if "profile" in best:
            total = sum(best["profile"].values())
            print("    " + ", ".join(f"{op} {s / total:.0%}" for op, s in list(best["profile"].items())[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
