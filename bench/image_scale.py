"""The full-size models of bench/image.py's ``--scale real``: random weights, real shapes.

The cost of a UNet call does not depend on its weights, so each model is built from the
config bundles vendored in resources/image_configs/ (the same ones single-file imports
use) with diffusers' and transformers' own classes, randomly initialised, and saved once
as a diffusers folder: what diffusers, optimum and our exporter all read. Nothing touches
a hub.

Our packs come from our exporter's own convert and quantize steps (the graphs a user
gets), converted once per model and quantized from that one fp32 export. The validation
steps are left out on purpose: on random weights they judge noise against noise, they
would triple the time on a 2-core machine, and the exporter's tests cover them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: its config bundle and how an image is made."""

    key: str  # our name for the row group
    bundle: str  # folder under resources/image_configs
    title: str
    size: int
    steps: int
    guidance: float  # <= 1: no classifier-free guidance (one UNet row per call)

    @property
    def xl(self) -> bool:
        return self.bundle.startswith("sdxl")


SPECS = {
    "sd15": Spec("sd15", "sd15", "SD 1.5 (UNet 860M)", 512, 20, 7.5),
    "sd-turbo": Spec("sd-turbo", "sd21-turbo", "SD-Turbo (SD 2.1 UNet 866M)", 512, 1, 0.0),
    "sdxl": Spec("sdxl", "sdxl", "SDXL (UNet 2.6B)", 1024, 4, 5.0),
}


def build_pipeline(spec: Spec, folder: Path, configs: Path | None = None) -> Path:
    """A diffusers folder of ``spec``'s architecture with random weights (built once), from
    the vendored bundles (or ``configs``: tests use tiny ones)."""
    if (folder / "model_index.json").is_file():
        return folder
    import diffusers
    import torch
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from exporters.image.stable_diffusion.checkpoint import CONFIGS, assemble_config

    print(f"building a random {spec.title} pipeline...", file=sys.stderr)
    work = folder.parent / (folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    configs = assemble_config(spec.bundle, work, configs or CONFIGS)
    torch.manual_seed(0)
    parts: dict = {
        "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(configs / "unet"))),
        "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(str(configs / "vae"))),
    }
    index = diffusers.DiffusionPipeline.load_config(str(configs))
    for name in ("text_encoder", "text_encoder_2"):
        if name in index:
            cls = getattr(transformers, index[name][1])  # CLIPTextModel / CLIPTextModelWithProjection
            parts[name] = cls(cls.config_class.from_json_file(str(configs / name / "config.json")))
    for name in ("tokenizer", "tokenizer_2"):
        if name in index:
            parts[name] = transformers.CLIPTokenizer.from_pretrained(str(configs / name))
    parts["scheduler"] = diffusers.EulerDiscreteScheduler.from_pretrained(str(configs / "scheduler"))
    cls = getattr(diffusers, index["_class_name"])
    extra = {} if spec.xl else {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    pipe = cls(**parts, **extra)
    out = work / "pipeline"
    pipe.save_pretrained(str(out))
    del pipe, parts
    for name in ("tokenizer", "tokenizer_2"):
        if (configs / name).is_dir():
            _keep_slow_tokenizer_files(configs / name, out / name)
    for name in ("text_encoder", "text_encoder_2"):
        if (out / name).is_dir():
            _prefix_text_model(out / name / "model.safetensors")
    shutil.rmtree(folder, ignore_errors=True)
    out.rename(folder)
    shutil.rmtree(work, ignore_errors=True)
    return folder


def _keep_slow_tokenizer_files(src: Path, dst: Path) -> None:
    """transformers 5 saves only tokenizer.json; optimum's venv (transformers 4.x) loads the
    slow CLIPTokenizer, which reads vocab.json + merges.txt."""
    for name in ("vocab.json", "merges.txt"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


def _prefix_text_model(weights: Path) -> None:
    """transformers 4.x looks for a CLIP text encoder's weights under "text_model.", which
    5.x drops when saving (5.x reads both): without this optimum would silently export a
    randomly re-initialised text encoder."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    keep = ("text_model.", "text_projection.")
    save_file({k if k.startswith(keep) else "text_model." + k: v for k, v in state.items()}, str(weights), metadata={"format": "pt"})


def export_packs(source: Path, cache: Path, precisions: list[str], name: str) -> dict[str, Path]:
    """{precision: pack folder}: our exporter's fp32 graphs, converted once, and its fp16 /
    int8 quantization of them; each finished pack is moved into place whole (the fp32 one is
    kept even when not asked for: it is what the others are made from)."""
    wanted = {p: cache / f"pack-{p}" for p in precisions}
    missing = [p for p, d in wanted.items() if not (d / "manifest.json").is_file()]
    if not missing:
        return wanted
    from exporters.api import open_config

    config = open_config("image", source, "fp32")
    work = cache / "export-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # the fp32 pack is converted once (it always is, being the quantizer's input) and put in
    # place at once, so a run stopped while quantizing keeps it
    fp32_dir = cache / "pack-fp32"
    if not (fp32_dir / "manifest.json").is_file():
        print(f"converting {source.name} with our exporter...", file=sys.stderr)
        converted = config.convert(work)
        _write_manifest(config, converted, "fp32", f"bench-{name}-fp32")
        shutil.rmtree(fp32_dir, ignore_errors=True)
        converted.rename(fp32_dir)
    for precision in [p for p in missing if p != "fp32"]:
        print(f"quantizing to {precision}...", file=sys.stderr)
        pack = work / precision
        pack.mkdir()
        config.quantize(fp32_dir, precision, pack)  # copies the side files, never the manifest
        _write_manifest(config, pack, precision, f"bench-{name}-{precision}")
        shutil.rmtree(wanted[precision], ignore_errors=True)
        pack.rename(wanted[precision])
    shutil.rmtree(work, ignore_errors=True)
    return wanted


def _write_manifest(config, pack: Path, precision: str, name: str) -> None:
    from desktop.engines.packs.pack import write_manifest

    fields = config.draft_manifest(pack, precision)  # no latent preview fit: it costs VAE runs
    fields.update(name=name, modality="image", precision=precision, runtime=config.runtime, license={"id": "unknown"})
    (pack / "manifest.json").unlink(missing_ok=True)
    write_manifest(pack, fields, config.roles(pack))


def json_child(cmd: list[str], env: dict, label: str) -> dict | None:
    """Run a measuring child and read the last JSON line it prints; a failed child is said in
    one line (its last stderr lines) and gives None, so one broken row does not end the table."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"{label} failed: " + " | ".join(proc.stderr.strip().splitlines()[-3:]), file=sys.stderr)
        return None
    return json.loads(lines[-1])
