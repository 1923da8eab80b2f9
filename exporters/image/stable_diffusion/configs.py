"""Image export config: Stable Diffusion family pipelines from diffusers folders.

``python -m exporters image SOURCE --out DIR --precision {fp32,fp16,int8} [--lora FILE]``

optimum-onnx pins transformers < 4.58 while Atelier uses transformers 5, so the
components are exported here with torch.onnx (``graph``), in optimum's layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ... import quantize
from ...pipeline import ExportConfig, Source
from ...registry import register
from .source import load_image_source

ROLES = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
# End-to-end pixel difference (0-255, mean) allowed against PyTorch fp32, per precision.
FLOORS = {"fp32": 1.0, "fp16": 4.0, "int8": 12.0}


@register("image", "stable-diffusion")
class StableDiffusionExport(ExportConfig):
    precisions = ("fp32", "fp16", "int8")
    options = ("lora",)
    engine_checks = True  # the end-to-end check generates with the pack's real engine
    pack_architecture = "stable-diffusion"  # the image engine's pipeline for these packs
    # What a family exports, as data (SDXL's config adds its second encoder and tokenizer)
    graphs: tuple[str, ...] = ROLES
    tokenizers: tuple[str, ...] = ("tokenizer",)
    quantized: tuple[str, ...] = ("unet", "text_encoder")  # the graphs fp16/int8 convert

    def __init__(self, source: Source):
        super().__init__(source)
        self.pipe = source.model
        self.max_length = int(getattr(self.pipe.tokenizer, "model_max_length", 77) or 77)
        if self.max_length > 1024:
            self.max_length = 77

    @classmethod
    def load_source(cls, location: str, architecture: str, lora: str | Path | None = None, **options: Any) -> Source:
        return load_image_source(location, architecture, lora)

    # -- convert ------------------------------------------------------------------------
    def convert(self, workdir: Path) -> Path:
        from .graph import export_components

        out = workdir / "fp32"
        out.mkdir()
        export_components(self.pipe, out, self.max_length)
        self._write_side_files(out)
        return out

    def _write_side_files(self, out: Path) -> None:
        for role in self.tokenizers:
            tok = out / role
            getattr(self.pipe, role).save_pretrained(str(tok))
            for f in tok.iterdir():
                if f.suffix == ".py":  # tokenizer code from a source never travels
                    f.unlink()
        (out / "scheduler").mkdir(exist_ok=True)
        config = {k: v for k, v in dict(self.pipe.scheduler.config).items() if not k.startswith("_") or k == "_class_name"}
        config["_class_name"] = type(self.pipe.scheduler).__name__
        (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(config, indent=2, default=_plain), encoding="utf-8")
        index = {"_class_name": type(self.pipe).__name__, "exported_by": "atelier", **{r: ["onnxruntime", "ORTModel"] for r in self.graphs}}
        (out / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")

    # -- quantize ------------------------------------------------------------------------
    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> dict[str, Any]:
        shutil.copytree(fp32_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("manifest.json"))
        # The VAE stays fp32: its activations overflow fp16 and its convolutions lose
        # visible detail at int8, while it runs once per image (the UNet runs every step).
        for role in self.quantized_roles(precision):
            src, dst = fp32_dir / role / "model.onnx", out_dir / role / "model.onnx"
            for f in (out_dir / role).iterdir():
                f.unlink()
            if precision == "fp16":
                quantize.fp16(src, dst)
            elif precision == "int8":
                # MatMul weights only: int8 convolutions (ConvInteger) run 2.4x slower
                # than fp32 ones on this CPU, int8 MatMuls ~10% faster (bench/image.py)
                quantize.dynamic_int8(src, dst, op_types=["MatMul"])
        return {}

    def quantized_roles(self, precision: str) -> tuple[str, ...]:
        return self.quantized

    # -- validate ------------------------------------------------------------------------
    def validate(self, pack_dir: Path, reference: Any) -> dict[str, Any]:
        from .validate import validate_components, validate_end_to_end
        from .validate_inpaint import validate_inpainting_end_to_end

        # an inpainting UNet draws only with a picture and a mask (SD's inpainting pipeline is the default)
        end_to_end = validate_inpainting_end_to_end if self.pipe.unet.config.in_channels == 9 else validate_end_to_end
        return {"components": validate_components(self.pipe, pack_dir, self.max_length), "end_to_end": end_to_end(self.pipe, pack_dir)}

    def passes_floor(self, report: dict[str, Any], precision: str) -> tuple[bool, str]:
        e2e = report["end_to_end"]["pixel_mean_abs"]
        floor = FLOORS[precision]
        if e2e > floor:
            return False, f"end-to-end mean pixel difference {e2e:.2f} > {floor} (0-255 scale)"
        return True, f"end-to-end mean pixel difference {e2e:.2f} <= {floor}"

    # -- manifest ------------------------------------------------------------------------
    def manifest(self, pack_dir: Path, precision: str, facts: dict[str, Any]) -> dict[str, Any]:
        fields = self.draft_manifest(pack_dir, precision)
        fields["config"]["latent_rgb"] = self._latent_rgb(pack_dir)
        return fields

    def draft_manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        """Everything but the latent preview's colour fit: the engine does without it, and
        the fit costs VAE runs, so only the final manifest has it."""
        from .attention import supports_fusion

        pipe = self.pipe
        unet, vae = pipe.unet.config, pipe.vae.config
        vae_scale = 2 ** (len(vae.block_out_channels) - 1)
        down = list(unet.down_block_types)
        first_attention = next((i for i, b in enumerate(down) if "Attn" in b), len(down) - 1)
        heads = unet.attention_head_dim if unet.num_attention_heads is None else unet.num_attention_heads
        heads = heads[first_attention] if isinstance(heads, (list, tuple)) else heads
        return {
            "architecture": self.source.architecture,
            "runtime": self.runtime,
            "io": {
                "text_encoder": {"inputs": ["input_ids"], "outputs": ["last_hidden_state", "pooler_output"]},
                "unet": {"inputs": ["sample", "timestep", "encoder_hidden_states"] + (["timestep_cond"] if unet.time_cond_proj_dim else []), "outputs": ["out_sample"]},
                "vae_decoder": {"inputs": ["latent_sample"], "outputs": ["sample"]},
                "vae_encoder": {"inputs": ["sample"], "outputs": ["latent_parameters"]},
            },
            "config": {
                "pipeline_class": type(pipe).__name__,
                "scheduler_class": type(pipe.scheduler).__name__,
                "latent_channels": int(vae.latent_channels),
                "vae_scale_factor": vae_scale,
                "scaling_factor": float(vae.scaling_factor),
                "shift_factor": float(getattr(vae, "shift_factor", None) or 0.0),
                "sample_size": int(unet.sample_size),
                "size_multiple": max(8, vae_scale),  # the UNet graph takes any latent size (see graph.py)
                "text_max_length": self.max_length,
                "attention": {"downsample": 2**first_attention, "heads": int(heads), "fused": supports_fusion(pipe.unet)},
                "vae_decoder_channels": int(vae.block_out_channels[-1]),
                "unet_parameters": int(sum(p.numel() for p in pipe.unet.parameters())),
                # the engine feeds a 9-channel UNet [latents, mask, masked picture] and asks for a mask
                "inpainting": int(unet.in_channels) == 9,
            },
        }

    def _latent_rgb(self, pack_dir: Path) -> dict:
        import onnxruntime as ort

        from desktop.engines.image.latent_preview import fit_from_encoder

        vae = self.pipe.vae.config
        encoder = ort.InferenceSession(str(pack_dir / "vae_encoder" / "model.onnx"), providers=["CPUExecutionProvider"])
        shift, scale, c = float(getattr(vae, "shift_factor", None) or 0.0), float(vae.scaling_factor), int(vae.latent_channels)

        def encode(images):
            out = encoder.run(None, {"sample": images})[0][:, :c]
            return (out - shift) * scale

        return fit_from_encoder(encode, 2 ** (len(vae.block_out_channels) - 1))

    def roles(self, pack_dir: Path) -> dict[str, str]:
        roles = {}
        for f in pack_dir.rglob("*"):
            if not f.is_file():
                continue
            rel = f.relative_to(pack_dir).as_posix()
            top = rel.split("/")[0]
            if top in self.graphs:
                roles[rel] = top if f.name == "model.onnx" else "weights"
            elif top in self.tokenizers or top == "scheduler":
                roles[rel] = top
        return roles


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

