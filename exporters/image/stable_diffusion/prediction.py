"""What an SD 2.x checkpoint's UNet predicts: the noise (epsilon) or v.

The tensor layout cannot tell: the 512-pixel "base" models predict noise, the 768-pixel ones
predict v, and a fine-tune inherits its base's. A wrong guess raises no error; it gives grey,
washed-out or noisy pictures. So the evidence is weighed in a fixed order, the first that speaks
decides, and the choice and what made it travel in the export report (the manifest's config and
the model card), never silently:

1. the user's ``--prediction-type``;
2. the file's own metadata (the Stability model spec's ``modelspec.prediction_type``, or kohya's
   ``ss_v_parameterization`` from training);
3. the file name (``768``, ``v-pred`` against ``512``, ``base``), as Stability named its files;
4. the weights: the spread of one layer-norm bias near the UNet's output, which is wide in v models
   and narrow in noise models (the rule ComfyUI has used on every SD 2.x file since 2023).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from desktop.engines.errors import ExportError

CHOICES = ("epsilon", "v_prediction")
PROBE = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
PROBE_THRESHOLD = 0.09  # std above it: v

_V_NAME = re.compile(r"(?<![a-z0-9])(768(?:-?v)?|v[-_]?pred(?:iction)?|vpred)(?![a-z0-9])")
_EPS_NAME = re.compile(r"(?<![0-9])512(?![0-9])|(?<![a-z])base(?![a-z])|(?<![a-z])eps(?:ilon)?(?![a-z])")


def check_choice(value: str | None) -> str | None:
    if value is None or value in CHOICES:
        return value
    raise ExportError(f"Unknown prediction type '{value}'; choose epsilon (SD 2.x 512 base) or v_prediction (SD 2.x 768).")


def from_metadata(metadata: Mapping[str, str]) -> tuple[str, str] | None:
    spec = str(metadata.get("modelspec.prediction_type", "")).strip().lower()
    if spec in ("v", "v_prediction", "v-prediction"):
        return "v_prediction", f"the file's metadata (modelspec.prediction_type = {spec})"
    if spec in ("epsilon", "eps", "noise"):
        return "epsilon", f"the file's metadata (modelspec.prediction_type = {spec})"
    kohya = str(metadata.get("ss_v_parameterization", "")).strip().lower()
    if kohya in ("true", "false"):
        return ("v_prediction" if kohya == "true" else "epsilon"), f"the file's training metadata (ss_v_parameterization = {kohya})"
    return None


def from_name(stem: str) -> tuple[str, str] | None:
    name = stem.lower()
    v, eps = _V_NAME.search(name), _EPS_NAME.search(name)
    if v and not eps:
        return "v_prediction", f"the file name ('{v.group(0)}' marks the 768 v-prediction models)"
    if eps and not v:
        return "epsilon", f"the file name ('{eps.group(0)}' marks the 512 base models)"
    return None


def from_weights(path: Path) -> tuple[str, str] | None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        if PROBE not in f.keys():
            return None
        std = float(f.get_tensor(PROBE).float().std(unbiased=False))
    kind = "v_prediction" if std > PROBE_THRESHOLD else "epsilon"
    return kind, f"the weights (output-block layer-norm spread {std:.3f} {'>' if kind == 'v_prediction' else '<='} {PROBE_THRESHOLD})"


def decide(path: Path, metadata: Mapping[str, str], chosen: str | None) -> tuple[str, str]:
    """(prediction type, what decided it) for an SD 2.x checkpoint."""
    if check_choice(chosen):
        return chosen, "--prediction-type"
    for found in (from_metadata(metadata), from_name(path.stem), from_weights(path)):
        if found:
            return found
    # No evidence at all: SD 2.1 768 is the release most fine-tunes start from.
    return "v_prediction", "no evidence in the file (assumed the SD 2.1 768 base; if pictures come out grey, export again with --prediction-type epsilon)"
