"""Stable Diffusion XL (base, Turbo, inpainting) over ONNX Runtime.

What differs from SD 1.x/2.x (``sd.py``, whose shared loop, img2img, inpainting, previews,
memory estimate and VAE decode this reuses):

* two CLIP text encoders read the prompt, each with its own tokenizer (SDXL's second one pads
  with "!"), and the UNet gets both encoders' *penultimate* hidden states side by side;
* the second encoder's pooled, projected embedding (``text_embeds``) and six "time ids"
  (original size, crop top-left, target size, in pixels) are extra UNet inputs, which the UNet
  embeds together and adds to its timestep embedding;
* an empty negative prompt is all zeros rather than the encoding of "" (the pipeline config's
  ``force_zeros_for_empty_prompt``, as diffusers does), which is what the model was tuned on.

A second prompt (``prompt_2`` / ``negative_prompt_2``) goes to the second encoder only; when
empty, that encoder reads the first prompt, as diffusers' ``prompt_2`` does.

Turbo packs run the same graphs: distilled for 1-4 steps without guidance, they differ only in
the pack's recommended steps and guidance (0: no unconditional pass) and a scheduler config with
trailing timesteps, all read from the pack.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from desktop.engines.errors import PackFormatError
from desktop.engines.image import prompt_weights
from desktop.engines.image.clip_tokenizer import ClipTokenizer
from desktop.engines.image.pipelines import make_image_session, register_pipeline
from desktop.engines.image.pipelines.sd import _NP_TYPES, StableDiffusionPipeline

ADDED_INPUTS = ("text_embeds", "time_ids")


@register_pipeline("stable-diffusion-xl")
class StableDiffusionXLPipeline(StableDiffusionPipeline):
    def __init__(self, pack, settings):
        roles = {f.role for f in pack.files}
        missing = [r for r in ("text_encoder_2", "tokenizer_2") if r not in roles]
        if missing:
            raise PackFormatError(
                f"Stable Diffusion XL pack '{pack.name}' is missing its {' and '.join(missing)}; "
                "SDXL reads the prompt with two text encoders. Re-export the complete model."
            )
        super().__init__(pack, settings)
        self.tokenizer_2 = ClipTokenizer(pack.path_of("tokenizer_2"))
        self.text_encoder_2, _ = make_image_session(pack.file_with_role("text_encoder_2"), settings)
        self.encoders = (
            _Encoder(self.tokenizer, self.text_encoder, pooled=False),
            _Encoder(self.tokenizer_2, self.text_encoder_2, pooled=True),
        )
        self.zero_empty_negative = bool(pack.config.get("force_zeros_for_empty_prompt", True))
        self.capabilities = replace(self.capabilities, prompt_2=True)

    def _read_io(self) -> None:
        super()._read_io()
        absent = [name for name in ADDED_INPUTS if name not in self.unet_inputs]
        if absent:
            raise PackFormatError(f"The UNet of '{self.pack.name}' has no {' or '.join(absent)} input; it is not an SDXL UNet.")
        dims = self.unet_inputs["time_ids"].shape
        self.time_id_count = dims[-1] if dims and isinstance(dims[-1], int) else 6

    def close(self) -> None:
        super().close()
        self.text_encoder_2 = None
        self.encoders = ()

    def _conditions(self, texts: list[str], request) -> tuple[dict[str, np.ndarray], list[str]]:
        """``texts`` are the prompt and (with guidance) the negative prompt; the second encoder
        reads prompt_2 / negative_prompt_2 instead where they are given, as in diffusers."""
        seconds = [request.prompt_2, request.negative_prompt_2][: len(texts)]
        per_encoder = (texts, [second or first for first, second in zip(texts, seconds)])
        chunks = [[prompt_weights.parse(t) for t in group] for group in per_encoder]
        weighted = any(prompt_weights.is_weighted(c) for group in chunks for c in group)
        hidden, pooled, cuts = [], None, None
        for encoder, group, group_chunks in zip(self.encoders, per_encoder, chunks):
            states, pool, lost = encoder.run(group, group_chunks if weighted else None)
            hidden.append(states)
            pooled = pool if pool is not None else pooled
            if cuts is None:  # the notice names what the first encoder's texts lost (both tokenizers split words alike)
                cuts = lost
        states = np.concatenate(hidden, axis=-1)
        # zeros only when nothing at all was asked to be avoided (diffusers' force_zeros_for_empty_prompt)
        if self.zero_empty_negative and len(texts) > 1 and not texts[1].strip() and not seconds[1].strip():
            states[1:] = 0.0
            pooled[1:] = 0.0
        return {"encoder_hidden_states": states, "text_embeds": pooled, "time_ids": self._time_ids(request, len(texts))}, cuts

    def _time_ids(self, request, rows: int) -> np.ndarray:
        """Original size, crop top-left and target size (height before width, in pixels). We
        generate at the asked size without cropping, so original = target and the crop is 0, 0."""
        ids = [request.height, request.width, 0, 0, request.height, request.width]
        if self.time_id_count != len(ids):
            raise PackFormatError(f"The UNet of '{self.pack.name}' takes {self.time_id_count} time ids; SDXL base models take 6 (a refiner is not supported).")
        return np.tile(np.asarray(ids, dtype=np.float32), (rows, 1))


class _Encoder:
    """One of SDXL's text encoders: its penultimate hidden states and, for the second one, the
    pooled projection. Graph outputs are found by name: ours are ``penultimate_hidden_state``
    and ``text_embeds``; optimum's export lists every layer as ``hidden_states.N``."""

    def __init__(self, tokenizer: ClipTokenizer, session, pooled: bool):
        self.tokenizer, self.session = tokenizer, session
        first = session.get_inputs()[0]
        self.input = (first.name, _NP_TYPES.get(first.type, np.int64))
        names = [o.name for o in session.get_outputs()]
        layers = sorted(int(n.rsplit(".", 1)[1]) for n in names if n.startswith("hidden_states.") and n.rsplit(".", 1)[1].isdigit())
        if "penultimate_hidden_state" in names:
            self.hidden_name = "penultimate_hidden_state"
        elif len(layers) >= 2:
            self.hidden_name = f"hidden_states.{layers[-2]}"
        else:
            raise PackFormatError(f"An SDXL text encoder graph has no penultimate hidden state output (it has {', '.join(names)[:120]}).")
        self.pooled_name = None
        if pooled:
            self.pooled_name = next((n for n in ("text_embeds", "pooler_output") if n in names), None)
            if self.pooled_name is None:
                raise PackFormatError("SDXL's second text encoder graph has no text_embeds output.")

    def run(self, texts: list[str], chunks) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        weights = None
        if chunks is not None:
            pairs = [self.tokenizer.encode_weighted(c) for c in chunks]
            encoded, weights = [e for e, _ in pairs], np.asarray([w for _, w in pairs], dtype=np.float32)
        else:
            encoded = [self.tokenizer.encode(prompt_weights.plain_text(t)) for t in texts]
        ids = np.asarray([e.ids for e in encoded], dtype=self.input[1])
        wanted = [self.hidden_name] + ([self.pooled_name] if self.pooled_name else [])
        outs = self.session.run(wanted, {self.input[0]: ids})
        hidden = outs[0].astype(np.float32)
        if weights is not None:
            hidden = prompt_weights.apply(hidden, weights)
        pooled = outs[1].astype(np.float32) if self.pooled_name else None
        return hidden, pooled, [e.truncated_words for e in encoded]
