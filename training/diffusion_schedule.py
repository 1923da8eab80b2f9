"""The training noise schedule of the emoji model, in diffusers' terms.

``squaredcos_cap_v2`` (the cosine schedule) over 1000 discrete steps with v-prediction:
the pack's manifest states exactly this, so any DDIM/Euler implementation that follows
diffusers (ours in desktop/engines) samples the model correctly.
"""

from __future__ import annotations

import math

import numpy as np

SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    # pixels live in [-1, 1], so clipping the clean-image estimate is exact, not a hack
    "clip_sample": True,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    # start from t = 999 (pure noise under this schedule) whatever the step count
    "timestep_spacing": "trailing",
}


def alphas_cumprod(steps: int = 1000) -> np.ndarray:
    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)], dtype=np.float64)
    return np.cumprod(1.0 - betas)
