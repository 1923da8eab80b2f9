"""The optimum ONNX Runtime baseline for bench/image.py, run in a separate interpreter.

optimum-onnx 0.1 pins transformers < 4.58 while Atelier uses transformers 5, so it lives
in a throwaway venv (see bench/image.py). This script imports nothing from Atelier.

    OPTIMUM_PYTHON export SOURCE OUT        # optimum's own export of a diffusers folder
    OPTIMUM_PYTHON measure OUT RUNS STEPS SIZE THREADS PROMPT spin|nospin GUIDANCE WARMUP_STEPS
                                            # optimum's SD / SDXL pipeline, prints one JSON line
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time

os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def export(source: str, out: str) -> None:
    from optimum.exporters.onnx import main_export

    main_export(model_name_or_path=source, output=out, task="text-to-image", device="cpu", do_validation=False)


def pipeline_class(folder: str):
    """optimum's pipeline for the exported family (its export keeps diffusers' model index)."""
    from optimum import onnxruntime as optimum_ort

    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as f:
        name = json.load(f).get("_class_name", "")
    return optimum_ort.ORTStableDiffusionXLPipeline if "XL" in name else optimum_ort.ORTStableDiffusionPipeline


def measure(folder: str, runs: int, steps: int, size: int, prompt: str, threads: int, spin: bool, guidance: float = 7.5, warmup_steps: int | None = None) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if not spin:  # the same thread behaviour as our engine, for a like-for-like row
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    pipe = pipeline_class(folder).from_pretrained(folder, provider="CPUExecutionProvider", session_options=opts)
    unet_times: list[float] = []
    inner = pipe.unet.forward

    def timed(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        unet_times.append(time.perf_counter() - t)
        return out

    pipe.unet.forward = timed
    image_times, cpu_times, calls = [], [], []
    for i in range(runs + 1):  # the first run warms up and is not counted
        unet_times.clear()
        t, c = time.perf_counter(), time.process_time()
        n = steps if i or warmup_steps is None else warmup_steps
        pipe(prompt, num_inference_steps=n, guidance_scale=guidance, height=size, width=size, output_type="np")
        if i:
            image_times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - c)
            calls += unet_times
    return {"seconds_per_image": statistics.median(image_times), "cpu_seconds_per_image": statistics.median(cpu_times), "seconds_per_unet_call": statistics.median(calls),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
    else:
        folder, runs, steps, size, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        extra = {"guidance": float(sys.argv[9]), "warmup_steps": int(sys.argv[10])} if len(sys.argv) > 10 else {}
        print(json.dumps(measure(folder, runs, steps, size, sys.argv[7], threads, spin=sys.argv[8] == "spin", **extra)))
