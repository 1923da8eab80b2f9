"""Image benchmark: seconds per image and per UNet call, SD-family pipelines, 2 threads.

``--scale small`` (default, minutes): one SD-shaped pipeline with random weights: UNet
block channels (64, 128, 256), two layers per block, cross-attention at the two
high-resolution levels (18.2M parameters), a 4-level VAE (x8, so 256x256 images have
32x32 latents), a small CLIP text encoder. 256x256, 20 steps, CFG 7.5.

``--scale real`` (an hour on 2 cores): the full-size architectures, random weights built
from the vendored configs (bench/image_scale.py): SD 1.5 at 512x512, 20 steps, CFG 7.5;
SD-Turbo (SD 2.1 architecture) at 512x512, 1 step, no CFG; SDXL at 1024x1024, 4 steps,
CFG 5 (skipped with the reason when it does not fit in memory or has no export).

The same prompt and Euler for everyone. Rows:

* diffusers PyTorch fp32                                   (baseline 1)
* optimum's ONNX Runtime pipeline on optimum's export      (baseline 2; separate venv)
* our engine on optimum's export (imported)                (same graphs: engine cost)
* our engine on our exports, fp32 / fp16 / int8

Each row runs in a fresh process (no thread pools shared between runtimes): one warm-up
image (at real scale a 1-step one: the same shapes, so the same allocations), then the
median of ``--runs`` images. Peak RSS is the row's process, loading included.

    python bench/image.py [--runs 3] [--optimum-python /tmp/optimum-venv/bin/python]
    nice python bench/image.py --scale real [--models sd15,sd-turbo,sdxl]

optimum-onnx 0.1 needs transformers < 4.58 and Atelier uses 5.x, so optimum runs in a
throwaway venv:  python3.11 -m venv /tmp/optimum-venv &&
/tmp/optimum-venv/bin/pip install "optimum-onnx[onnxruntime]" "transformers<4.58" diffusers torch==2.13.0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.image_scale import SPECS, Spec, build_pipeline as build_real, export_packs, json_child  # noqa: E402
from desktop.engines.atomic_write import write_text_atomic  # noqa: E402

CACHE = ROOT / ".cache" / "bench" / "image"
REAL_CACHE = ROOT / ".cache" / "bench" / "image-real"  # one folder per model, several GiB each
PROMPT = "a red apple on a wooden table, soft morning light"
THREADS = 2
DEFAULT_OPTIMUM = "/tmp/optimum-venv/bin/python"
SMALL = Spec("small", "", "SD-shaped pipeline (UNet 64/128/256, 18.2M params)", 256, 20, 7.5)


def build_small(folder: Path) -> Path:
    """The SD-shaped random pipeline as a diffusers folder (what a user would export)."""
    if (folder / "model_index.json").is_file():
        return folder
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.tiny_sd import write_tiny_clip_tokenizer

    torch.manual_seed(0)
    tok_dir = write_tiny_clip_tokenizer(folder.parent / "tokenizer-src")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=SMALL.size // 8, block_out_channels=(64, 128, 256), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=256, attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64, 128, 128), down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4, layers_per_block=1, norm_num_groups=32, sample_size=SMALL.size,
    )
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_hidden_layers=4,
                                        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    sched = diffusers.EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    # transformers 5 saves only tokenizer.json; optimum's venv (transformers 4.x) loads the
    # slow CLIPTokenizer, which reads vocab.json + merges.txt
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tok_dir / name, folder / "tokenizer" / name)
    # ...and transformers 4.x looks for the text encoder's weights under "text_model.",
    # which 5.x drops when saving (5.x reads both): without this optimum would silently
    # export a randomly initialised text encoder
    from safetensors.torch import load_file, save_file

    weights = folder / "text_encoder" / "model.safetensors"
    state = load_file(str(weights))
    save_file({k if k.startswith("text_model.") else "text_model." + k: v for k, v in state.items()}, str(weights), metadata={"format": "pt"})
    return folder


def small_packs(source: Path, precisions: list[str]) -> dict[str, Path]:
    """The small pipeline goes through the whole export (validation included): it is cheap."""
    packs = {}
    for precision in precisions:
        out = packs[precision] = CACHE / f"pack-{precision}"
        if not (out / "manifest.json").is_file():
            import exporters

            print(f"exporting with our exporter ({precision})...", file=sys.stderr)
            shutil.rmtree(out, ignore_errors=True)
            exporters.export("image", source, out, precision, name=f"bench-sd-{precision}", force=True)
    return packs


def optimum_folder(source: Path, python: str, cache: Path) -> Path | None:
    out = cache / "optimum-export"
    if (out / "unet" / "model.onnx").is_file():
        return out
    print(f"exporting {source.parent.name} with optimum (separate venv)...", file=sys.stderr)
    proc = subprocess.run([python, str(ROOT / "bench" / "image_optimum.py"), "export", str(source), str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        print("optimum export failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1], file=sys.stderr)
        return None
    return out


def imported(folder: Path, cache: Path) -> Path:
    """optimum's export as an Atelier pack (through our importer)."""
    dest = cache / "optimum-imported"
    if not (dest / "manifest.json").is_file():
        from desktop.engines.packs.importers import import_path
        from desktop.engines.packs.library import Library

        shutil.rmtree(dest, ignore_errors=True)
        import_path(folder, Library(cache), name="optimum-imported")
    return dest


# -- measurements, each in its own process ---------------------------------------------------
def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_diffusers(source: str, runs: int, spec: Spec) -> dict:
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(THREADS)
    pipe = DiffusionPipeline.from_pretrained(source, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    calls: list[float] = []
    inner = pipe.unet.forward

    def timed(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        calls.append(time.perf_counter() - t)
        return out

    pipe.unet.forward = timed
    times, cpu, per_call = [], [], []
    with torch.inference_mode():
        for i in range(runs + 1):
            calls.clear()
            t, c = time.perf_counter(), time.process_time()
            steps = spec.steps if i else warmup_steps(spec)
            pipe(PROMPT, num_inference_steps=steps, guidance_scale=spec.guidance, height=spec.size, width=spec.size, output_type="np")
            if i:
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                per_call += calls
    return summary(times, cpu, per_call)


def measure_ours(pack: str, runs: int, spec: Spec) -> dict:
    from desktop.engines.events import Done
    from desktop.engines.image.engine import ImageEngine, ImageRequest
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import RuntimeSettings

    engine = ImageEngine(load_pack(pack, verify_hashes=False), RuntimeSettings(provider="cpu", threads=THREADS))
    times, cpu, per_call = [], [], []
    for i in range(runs + 1):
        steps = spec.steps if i else warmup_steps(spec)
        req = ImageRequest(prompt=PROMPT, width=spec.size, height=spec.size, steps=steps, guidance=spec.guidance, scheduler="euler", seed=i)
        t, c = time.perf_counter(), time.process_time()
        stats = next(ev.stats for ev in engine.generate(req) if isinstance(ev, Done))
        if i:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            per_call.append(stats["seconds_per_unet_call"])
    return summary(times, cpu, per_call)


def warmup_steps(spec: Spec) -> int:
    # at real scale a full warm-up image would double an hour's run for nothing: one step
    # runs every graph at the measured shapes
    return spec.steps if spec.key == "small" else 1


def summary(times: list[float], cpu: list[float], per_call: list[float]) -> dict:
    return {"seconds_per_image": statistics.median(times), "cpu_seconds_per_image": statistics.median(cpu),
            "seconds_per_unet_call": statistics.median(per_call), "peak_rss": _peak_rss()}


def in_subprocess(kind: str, target: str, runs: int, spec: Spec, python: str = sys.executable, spin: bool = True) -> dict | None:
    if kind == "optimum":
        cmd = [python, str(ROOT / "bench" / "image_optimum.py"), "measure", target, str(runs), str(spec.steps), str(spec.size), str(THREADS), PROMPT,
               "spin" if spin else "nospin", str(spec.guidance), str(warmup_steps(spec))]
    else:
        cmd = [python, __file__, "--measure", kind, "--target", target, "--runs", str(runs), "--spec", json.dumps(dataclasses.asdict(spec))]
    # PyTorch's OpenMP threads wait passively like our engine's: spinning threads on a
    # shared machine measure the other programs more than the model
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return json_child(cmd, env, kind)


def wait_for_idle(limit: int) -> None:
    deadline = time.monotonic() + limit
    while limit and os.getloadavg()[0] >= 1.5 and time.monotonic() < deadline:
        time.sleep(10)


def load_note() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores while measuring"
    except OSError:
        return ""


def available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


# An fp32 pipeline in memory, roughly: weights of UNet + text encoders + VAE, plus room to
# run; SDXL scaled from SD 1.5 by its weights (14 GB of them in fp32).
NEEDS_GIB = {"small": 1, "sd15": 7, "sd-turbo": 7, "sdxl": 18}
# An export (ours or optimum's) holds ~2.5x the fp32 weights while torch.onnx traces and
# serialises: SD 1.5 (4.3 GB of weights) peaked at 11 GB RSS.
EXPORT_GIB = {"small": 1, "sd15": 11, "sd-turbo": 12, "sdxl": 35}


def plan_rows(spec: Spec, args) -> tuple[list[tuple[str, str, tuple | None, str]], Path | None]:
    """[(row name, precision, measurement or None, why not)] for one model; exports first."""
    precisions = args.precisions.split(",")
    if spec.key == "small":
        cache, source = CACHE, build_small(CACHE / "pipeline")
        packs: dict[str, Path] | str = small_packs(source, precisions)
    else:
        cache = REAL_CACHE / spec.key
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        exported = cache / "pack-fp32" / "manifest.json"
        if available_gib() < NEEDS_GIB[spec.key]:
            why = f"does not fit: needs ~{NEEDS_GIB[spec.key]} GiB free, {available_gib():.0f} GiB available"
            if total < EXPORT_GIB[spec.key] and not exported.is_file():
                why += f"; its export ~{EXPORT_GIB[spec.key]} GiB, over this machine's {total:.0f} GiB"
            return [(name, "fp32", None, why) for name in ("diffusers PyTorch", "optimum ORT pipeline")] + [("our engine, our export", p, None, why) for p in precisions], None
        source = build_real(spec, cache / "pipeline")
        try:
            if not any(wanted(args.only, "our engine, our export", p) for p in precisions):
                raise LookupError("not measured (--only)")  # and not exported either
            packs = export_packs(source, cache, precisions, spec.key)
        except LookupError as exc:
            packs = str(exc)
        except Exception as exc:  # noqa: BLE001 - a family our exporter lacks is a row, not a crash
            packs = f"needs {spec.key.upper()} export ({str(exc).splitlines()[0][:120]})" if spec.xl else f"export failed: {str(exc).splitlines()[0][:120]}"
    wait_for_idle(args.when_idle)
    measured = measured_spec(spec, args)
    have_optimum = Path(args.optimum_python).is_file()
    opt_dir = optimum_folder(source, args.optimum_python, cache) if have_optimum else None
    rows: list[tuple[str, str, tuple | None, str]] = [("diffusers PyTorch", "fp32", ("diffusers", str(source), args.runs, measured), "")]
    if opt_dir is not None:
        rows.append(("optimum ORT pipeline", "fp32", ("optimum", str(opt_dir), args.runs, measured, args.optimum_python), ""))
        if spec.key == "small":  # at real scale each row costs minutes: the like-for-like ones only
            rows.append(("optimum ORT, threads sleep", "fp32", ("optimum", str(opt_dir), args.runs, measured, args.optimum_python, False), ""))
        if spec.key == "small" or args.with_imported:  # at real scale an import copies GiBs: on request
            rows.append(("our engine, optimum's graphs", "fp32", ("ours", str(imported(opt_dir, cache)), args.runs, measured), ""))
    else:
        why = "its export failed (above)" if have_optimum else f"no interpreter at {args.optimum_python} (see this file's docstring)"
        print(f"optimum baseline skipped: {why}", file=sys.stderr)
        rows.append(("optimum ORT pipeline", "fp32", None, why))
    for precision in precisions:
        if isinstance(packs, dict):
            rows.append(("our engine, our export", precision, ("ours", str(packs[precision]), args.runs, measured), ""))
        else:
            rows.append(("our engine, our export", precision, None, packs))
    return rows, opt_dir


def wanted(only: str, name: str, precision: str) -> bool:
    words = [w.strip() for w in only.split(",") if w.strip()]
    return not words or any(w in name or w == precision for w in words)


def measured_spec(spec: Spec, args) -> Spec:
    """``--steps N`` measures N-step images and composes the full count from the UNet calls
    (on a busy 2-core machine one 20-step SD 1.5 image per row takes the better part of an
    hour); the text encoder and VAE are in the measured image either way."""
    return dataclasses.replace(spec, steps=min(args.steps, spec.steps)) if args.steps else spec


def composed(spec: Spec, measured_steps: int, r: dict) -> dict:
    """A row measured at fewer steps, completed with its own median UNet call."""
    if measured_steps >= spec.steps:
        return r
    calls_per_step = 1  # classifier-free guidance batches both prompts into one call
    extra = (spec.steps - measured_steps) * calls_per_step * r["seconds_per_unet_call"]
    full = r["seconds_per_image"] + extra
    return dict(r, seconds_per_image=full, cpu_seconds_per_image=r["cpu_seconds_per_image"] * full / r["seconds_per_image"])


def run_model(spec: Spec, args) -> None:
    plan, _ = plan_rows(spec, args)
    # every measured row is kept, so a long run that was cut short (or --reuse) picks up
    # where it stopped instead of measuring an hour again
    store = (REAL_CACHE / spec.key if spec.key != "small" else CACHE) / "results.json"
    stored = json.loads(store.read_text()) if store.is_file() else {}
    steps = measured_spec(spec, args).steps
    key = lambda i: f"{plan[i][0]}|{plan[i][1]}|{steps} steps|{args.runs} runs"  # noqa: E731
    results: dict[int, list[dict]] = {i: list(stored.get(key(i), [])) if args.reuse else [] for i in range(len(plan))}
    # rounds in alternating order, best round per row: other programs' load drifts over minutes
    for r in range(args.rounds):
        order = [i for i in range(len(plan)) if plan[i][2] is not None and len(results[i]) <= r and wanted(args.only, *plan[i][:2])]
        for i in order if r % 2 == 0 else reversed(order):
            print(f"measuring {spec.key}: {plan[i][0]} {plan[i][1]} (round {r + 1})...", file=sys.stderr)
            got = in_subprocess(*plan[i][2])
            if got:
                got["load_average"] = os.getloadavg()[0]
                results[i].append(got)
                stored = json.loads(store.read_text()) if store.is_file() else {}  # another run may have added rows
                stored[key(i)] = results[i]
                write_text_atomic(store, json.dumps(stored, indent=1), overwrite=True)
    rows = [(name, precision, composed(spec, steps, min(results[i], key=lambda x: x["seconds_per_image"])) if results[i] else None, why or ("failed (above)" if measure and wanted(args.only, name, precision) else "not measured (--only)"))
            for i, (name, precision, measure, why) in enumerate(plan)]
    print_table(spec, rows, args)


def print_table(spec: Spec, rows: list, args) -> None:
    base = rows[0][2]
    optimum_rows = [r for name, _, r, _ in rows if name.startswith("optimum") and r]
    opt = min(optimum_rows, key=lambda r: r["seconds_per_image"]) if optimum_rows else None  # the faster optimum row
    cfg = f"CFG {spec.guidance:g}" if spec.guidance > 1 else "no CFG"
    print(f"\n{spec.title}, {spec.size}x{spec.size}, {spec.steps} step{'s' * (spec.steps > 1)}, {cfg}, Euler, {THREADS} threads; median of {args.runs} image(s), best of {args.rounds} round(s)")
    steps = measured_spec(spec, args).steps
    if steps < spec.steps:
        print(f"measured {steps}-step images; s/image and CPU s/image add {spec.steps - steps} x the row's median UNet call (~)")
    print(f"{'pipeline':30s} {'prec':5s} {'s/image':>8s} {'UNet call':>10s} {'CPU s/image':>12s} {'peak RSS':>9s} {'vs diffusers':>13s} {'vs optimum':>11s}")
    for name, precision, r, why in rows:
        if r is None:
            print(f"{name:30s} {precision:5s} {'n/a':>8s}  {why}")
            continue
        vs_d = f"{base['seconds_per_image'] / r['seconds_per_image']:.2f}x" if base else "-"
        vs_o = f"{opt['seconds_per_image'] / r['seconds_per_image']:.2f}x" if opt else "-"
        rss = f"{r.get('peak_rss', 0) / 2**30:.1f} GiB"
        print(f"{name:30s} {precision:5s} {r['seconds_per_image']:8.2f} {r['seconds_per_unet_call'] * 1000:8.0f}ms {r['cpu_seconds_per_image']:12.2f} {rss:>9s} {vs_d:>13s} {vs_o:>11s}")
    note = load_note()
    if note:
        print(note)
    sys.stdout.flush()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=("small", "real"), default="small")
    p.add_argument("--models", default="sd15,sd-turbo,sdxl", help=f"with --scale real: any of {', '.join(SPECS)}")
    p.add_argument("--runs", type=int, help="images per row (default 3 small, 1 real)")
    p.add_argument("--rounds", type=int, help="measure every row this many times, alternating the order; keep the best (default 2 small, 1 real)")
    p.add_argument("--optimum-python", default=os.environ.get("OPTIMUM_PYTHON", DEFAULT_OPTIMUM))
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--steps", type=int, help="with --scale real: measure images of this many steps and add the rest from the UNet call time")
    p.add_argument("--reuse", action="store_true", help="keep the rows measured by an earlier run (results.json beside the models); measure only the missing ones")
    p.add_argument("--only", default="", help="measure only rows whose name contains one of these comma-separated words (diffusers, optimum, our)")
    p.add_argument("--with-imported", action="store_true", help="with --scale real: also our engine on optimum's graphs (imports a copy)")
    p.add_argument("--when-idle", type=int, default=0, metavar="SECONDS", help="wait up to this long for the machine to be idle (load < 1.5) before measuring")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args()
    real = args.scale == "real"
    args.runs = args.runs or (1 if real else 3)
    args.rounds = args.rounds or (1 if real else 2)
    if args.measure:
        fn = {"diffusers": measure_diffusers, "ours": measure_ours}[args.measure]
        print(json.dumps(fn(args.target, args.runs, Spec(**json.loads(args.spec)))))
        return 0

    CACHE.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ATELIER_HOME", str(CACHE / "home"))
    specs = [SPECS[k.strip()] for k in args.models.split(",")] if real else [SMALL]
    for spec in specs:  # one model at a time: a full-size one holds several GiB
        run_model(spec, args)
    print("\nvs columns: wall-clock ratios (vs optimum: against the faster optimum row); CPU s/image: both threads' CPU time, the figure least moved by other programs")
    if not real:
        print("anchors on this machine: diffusers 3.74 s, optimum 2.44 s per image; target <= 1.6 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
