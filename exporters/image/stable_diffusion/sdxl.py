"""Image export config: Stable Diffusion XL (base and Turbo), from a diffusers folder or a
single-file checkpoint, through the same pipeline as SD (convert -> validate against diffusers
-> quantize -> re-validate -> manifest). What differs is data on the config (its graphs,
tokenizers and quantized roles), the graphs (``sdxl_graph``) and the manifest fields the
engine's SDXL pipeline reads:

* ``force_zeros_for_empty_prompt``: an empty negative prompt is zeros, not the encoding of "";
* ``vae_force_upcast`` / ``vae_precision``: the original SDXL VAE overflows in fp16 (its
  config says ``force_upcast``), so its graphs stay fp32 in an fp16 pack unless the config
  says the VAE is a fixed one;
* ``family``, ``family_label``, ``native_size``, ``default_steps``, ``default_guidance``,
  ``default_scheduler``: what the Library shows and the Image studio starts from (Turbo: one
  step, no guidance, trailing timesteps from its scheduler config).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from desktop.engines.image.schedulers import DIFFUSERS_NAMES

from ...pipeline import Source
from ...registry import register
from .checkpoint import CONFIGS, CheckpointExport, checkpoint_export
from .configs import StableDiffusionExport
from .sdxl_graph import TEXT_ENCODERS, UNET_INPUTS, export_sdxl_components, validate_sdxl_components
from .source import COMPONENTS, load_image_source

SDXL_COMPONENTS = COMPONENTS + ("text_encoder_2", "tokenizer_2")
VAE_ROLES = ("vae_decoder", "vae_encoder")
LABELS = {"sdxl": "Stable Diffusion XL", "sdxl-turbo": "Stable Diffusion XL Turbo", "sdxl-inpainting": "Stable Diffusion XL inpainting"}


@register("image", "stable-diffusion-xl")
class StableDiffusionXLExport(StableDiffusionExport):
    pack_architecture = "stable-diffusion-xl"
    graphs = TEXT_ENCODERS + ("unet",) + VAE_ROLES
    tokenizers = ("tokenizer", "tokenizer_2")
    quantized = ("unet",) + TEXT_ENCODERS

    def __init__(self, source: Source):
        super().__init__(source)
        self.pipe.text_encoder_2.eval()

    @classmethod
    def load_source(cls, location: str, architecture: str, lora: str | Path | None = None, **options: Any) -> Source:
        return load_image_source(location, architecture, lora, components=SDXL_COMPONENTS)

    def convert(self, workdir: Path) -> Path:
        out = workdir / "fp32"
        out.mkdir()
        export_sdxl_components(self.pipe, out, self.max_length)
        self._write_side_files(out)
        return out

    def quantized_roles(self, precision: str) -> tuple[str, ...]:
        if precision == "fp16" and not self._vae_needs_fp32():
            return self.quantized + VAE_ROLES
        return self.quantized

    def _vae_needs_fp32(self) -> bool:
        return bool(getattr(self.pipe.vae.config, "force_upcast", True))

    def validate(self, pack_dir: Path, reference: Any) -> dict[str, Any]:
        from .validate import validate_end_to_end
        from .validate_inpaint import validate_inpainting_end_to_end

        # an inpainting UNet draws only with a picture and a mask, so it is judged repainting one
        end_to_end = validate_end_to_end
        if self._inpainting():
            end_to_end = functools.partial(validate_inpainting_end_to_end, inpaint_class="StableDiffusionXLInpaintPipeline",
                                           dropped=("image_encoder", "feature_extractor"))
        return {"components": validate_sdxl_components(self.pipe, pack_dir, self.max_length), "end_to_end": end_to_end(self.pipe, pack_dir)}

    def _inpainting(self) -> bool:
        return int(self.pipe.unet.config.in_channels) == 9

    def draft_manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        fields = super().draft_manifest(pack_dir, precision)
        fields["architecture"] = self.pack_architecture
        distilled = self.pipe.unet.config.time_cond_proj_dim is not None
        io = fields["io"]
        io["text_encoder"] = {"inputs": ["input_ids"], "outputs": ["penultimate_hidden_state"]}
        io["text_encoder_2"] = {"inputs": ["input_ids"], "outputs": ["penultimate_hidden_state", "text_embeds"]}
        io["unet"]["inputs"] = list(UNET_INPUTS) + (["timestep_cond"] if distilled else [])
        fields["config"].update(
            inpainting=self._inpainting(),  # the engine feeds [latents, mask, masked picture] and asks for a mask
            force_zeros_for_empty_prompt=bool(getattr(self.pipe.config, "force_zeros_for_empty_prompt", True)),
            vae_force_upcast=self._vae_needs_fp32(),
            vae_precision="fp16" if "vae_decoder" in self.quantized_roles(precision) else "fp32",
            **self._recommended(),
        )
        return fields

    def _recommended(self) -> dict[str, Any]:
        """A diffusers folder carries no recommended settings: those of its base (SDXL, or
        SDXL-Turbo when its name or model card says so) from the vendored config bundles.
        A checkpoint's export records its own on top (``CheckpointExport``)."""
        turbo = "turbo" in f"{Path(self.source.location).name} {self.source.model_card}".lower()
        family = "sdxl-inpainting" if self._inpainting() else "sdxl-turbo" if turbo else "sdxl"
        defaults = json.loads((CONFIGS / family / "atelier_defaults.json").read_text(encoding="utf-8"))
        vae = self.pipe.vae.config
        return {
            "family": family,
            "family_label": LABELS[family],
            "native_size": int(self.pipe.unet.config.sample_size) * 2 ** (len(vae.block_out_channels) - 1),
            "default_steps": int(defaults["default_steps"]),
            "default_guidance": float(defaults["default_guidance"]),
            # the folder's own scheduler when the engine has it, else the bundle's recommendation
            "default_scheduler": DIFFUSERS_NAMES.get(type(self.pipe.scheduler).__name__) or defaults.get("default_scheduler", "euler"),
        }


@checkpoint_export("StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline")
class StableDiffusionXLCheckpointExport(CheckpointExport, StableDiffusionXLExport):
    """An SDXL single-file checkpoint: SDXL's graphs, the checkpoint's family and settings."""
