"""Diffusion schedulers in pure numpy, apart from any model (diffusers' split).

A scheduler turns the model's prediction at one timestep into the sample for the next.
It knows the noise schedule (from a diffusers-style ``scheduler_config.json``) and
nothing about UNets, prompts or packs, so every pipeline can use every scheduler.

Usage, for ``steps`` denoising steps (``strength`` < 1 for img2img)::

    sched = make_scheduler("dpmpp_2m", config)
    sched.set_timesteps(steps, strength)
    latents = noise * sched.init_noise_sigma            # or sched.add_noise(init, noise)
    for i, t in enumerate(sched.timesteps):
        out = model(sched.scale_model_input(latents, i), t)
        latents, denoised = sched.step(out, i, latents, rng)

The maths follows the published samplers exactly as diffusers implements them (tests
compare each against its diffusers counterpart); coefficients are computed in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from desktop.engines.errors import RequestError

# diffusers class name -> our scheduler name, to pick a pack's default
DIFFUSERS_NAMES = {
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler_a",
    "DDIMScheduler": "ddim",
    "DPMSolverMultistepScheduler": "dpmpp_2m",
    "LCMScheduler": "lcm",
}
LABELS = {"euler": "Euler", "euler_a": "Euler ancestral", "ddim": "DDIM", "dpmpp_2m": "DPM++ 2M", "lcm": "LCM"}

_SCHEDULERS: dict[str, type] = {}


def _register(name: str):
    def deco(cls):
        cls.name = name
        _SCHEDULERS[name] = cls
        return cls

    return deco


def scheduler_names() -> list[str]:
    return list(_SCHEDULERS)


def make_scheduler(name: str, config: dict[str, Any] | None = None) -> "Scheduler":
    cls = _SCHEDULERS.get(name)
    if cls is None:
        raise RequestError(f"Unknown scheduler '{name}'. Known: {', '.join(_SCHEDULERS)}.")
    return cls(config or {})


def betas_for(config: dict[str, Any]) -> np.ndarray:
    n = int(config["num_train_timesteps"])
    schedule = config["beta_schedule"]
    if config.get("trained_betas") is not None:
        betas = np.asarray(config["trained_betas"], dtype=np.float64)
    elif schedule == "linear":
        betas = np.linspace(config["beta_start"], config["beta_end"], n, dtype=np.float64)
    elif schedule == "scaled_linear":
        betas = np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n, dtype=np.float64) ** 2
    elif schedule == "squaredcos_cap_v2":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = np.array([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)])
    else:
        raise RequestError(f"The pack's scheduler uses beta schedule '{schedule}', which this app does not know.")
    if config.get("rescale_betas_zero_snr"):
        betas = _rescale_zero_terminal_snr(betas)
    return betas


def _rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Shift the schedule so the last timestep is pure noise (Lin et al. 2023, alg. 1)."""
    root = np.sqrt(np.cumprod(1.0 - betas))
    first, last = root[0], root[-1]
    root = (root - last) * first / (first - last)
    bar = root**2
    alphas = np.concatenate([bar[:1], bar[1:] / bar[:-1]])
    return 1 - alphas


def spaced_timesteps(config: dict[str, Any], steps: int, dtype=np.float64) -> np.ndarray:
    """The timesteps used for ``steps`` inference steps, highest first."""
    n = int(config["num_train_timesteps"])
    spacing = config["timestep_spacing"]
    if spacing == "linspace":
        return np.linspace(0, n - 1, steps)[::-1].astype(dtype)
    if spacing == "leading":
        ratio = n // steps
        return (np.arange(0, steps) * ratio).round()[::-1].astype(dtype) + config["steps_offset"]
    if spacing == "trailing":
        return (np.arange(n, 0, -n / steps).round() - 1).astype(dtype)
    raise RequestError(f"The pack's scheduler uses timestep spacing '{spacing}', which this app does not know.")


def karras_sigmas(sigma_min: float, sigma_max: float, steps: int, rho: float = 7.0) -> np.ndarray:
    """Karras et al. (2022) noise levels: dense near the clean end."""
    ramp = np.linspace(0, 1, steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def sigma_to_t(sigmas: np.ndarray, log_sigmas: np.ndarray) -> np.ndarray:
    """Fractional training timestep of each sigma (interpolated in log-sigma)."""
    log_sigma = np.log(np.maximum(sigmas, 1e-10))
    dists = log_sigma - log_sigmas[:, None]
    low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=len(log_sigmas) - 2)
    w = np.clip((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1]), 0, 1)
    return (1 - w) * low + w * (low + 1)


class Scheduler:
    name = ""
    #: diffusers' defaults for this scheduler; a config supplies any of these keys
    defaults: dict[str, Any] = {}
    _common = {
        "num_train_timesteps": 1000,
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "trained_betas": None,
        "prediction_type": "epsilon",
        "timestep_spacing": "linspace",
        "steps_offset": 0,
        "rescale_betas_zero_snr": False,
    }

    def __init__(self, config: dict[str, Any]):
        # Like diffusers' from_config: take the keys this scheduler knows, ignore the rest,
        # so one scheduler_config.json configures every scheduler.
        known = {**self._common, **self.defaults}
        self.config = {k: config[k] if config.get(k) is not None else v for k, v in known.items()}
        if self.config["prediction_type"] not in ("epsilon", "v_prediction", "sample"):
            raise RequestError(f"Prediction type '{self.config['prediction_type']}' is not supported.")
        betas = betas_for(self.config)
        self.alphas_cumprod = np.cumprod(1.0 - betas)
        if self.config["rescale_betas_zero_snr"]:
            self.alphas_cumprod[-1] = 2**-24
        self.timesteps = np.zeros(0)
        self.init_noise_sigma = 1.0
        self.begin = 0  # index of timesteps[0] in the full schedule (img2img starts later)

    def set_timesteps(self, steps: int, strength: float = 1.0) -> None:
        """Plan ``steps`` steps; with ``strength`` < 1 keep only the last part (img2img)."""
        full = self._schedule(steps)
        keep = min(int(steps * strength), steps)
        self.begin = max(steps - keep, 0)
        self.timesteps = full[self.begin :]

    def _schedule(self, steps: int) -> np.ndarray:
        raise NotImplementedError

    def scale_model_input(self, sample: np.ndarray, i: int) -> np.ndarray:
        return sample

    def step(self, model_output: np.ndarray, i: int, sample: np.ndarray, rng: np.random.Generator | None = None, noise: np.ndarray | None = None):
        """Return (previous sample, predicted clean sample) for step ``i`` of ``timesteps``.
        Stochastic schedulers draw ``noise`` from ``rng`` unless it is given."""
        raise NotImplementedError

    def add_noise(self, original: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Noise a clean sample to the level of the first planned step (img2img)."""
        a = self.alphas_cumprod[int(self.timesteps[0])]
        return (math.sqrt(a) * original + math.sqrt(1 - a) * noise).astype(np.float32)

    def _x0(self, model_output, sample, alpha_prod: float):
        """Clean-sample prediction in the DDPM parametrisation."""
        kind = self.config["prediction_type"]
        if kind == "epsilon":
            return (sample - math.sqrt(1 - alpha_prod) * model_output) / math.sqrt(alpha_prod)
        if kind == "v_prediction":
            return math.sqrt(alpha_prod) * sample - math.sqrt(1 - alpha_prod) * model_output
        return model_output

    @staticmethod
    def _noise(shape, rng, noise):
        if noise is not None:
            return noise
        if rng is None:
            raise ValueError("a stochastic scheduler needs an rng or explicit noise")
        return rng.standard_normal(shape, dtype=np.float32)


class _SigmaScheduler(Scheduler):
    """Samplers in the sigma (Karras) parametrisation: x = x0 + sigma * eps."""

    def _sigma_plan(self, steps: int):
        timesteps = spaced_timesteps(self.config, steps)
        all_sigmas = np.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        sigmas = np.interp(timesteps, np.arange(len(all_sigmas)), all_sigmas)
        if self.config.get("use_karras_sigmas"):
            sigmas = karras_sigmas(sigmas[-1], sigmas[0], steps)
            timesteps = sigma_to_t(sigmas, np.log(all_sigmas))
        return timesteps, sigmas

    def set_timesteps(self, steps: int, strength: float = 1.0) -> None:
        super().set_timesteps(steps, strength)
        self.sigmas = self._all_sigmas[self.begin :]
        top = float(self._all_sigmas.max())
        spacing = self.config["timestep_spacing"]
        self.init_noise_sigma = top if spacing in ("linspace", "trailing") else math.sqrt(top**2 + 1)

    def _schedule(self, steps: int) -> np.ndarray:
        timesteps, sigmas = self._sigma_plan(steps)
        self._all_sigmas = np.concatenate([sigmas, [self._final_sigma()]])
        return timesteps

    def _final_sigma(self) -> float:
        return 0.0

    def scale_model_input(self, sample, i):
        return (sample / math.sqrt(self.sigmas[i] ** 2 + 1)).astype(np.float32)

    def _x0_sigma(self, model_output, sample, sigma: float):
        kind = self.config["prediction_type"]
        if kind == "epsilon":
            return sample - sigma * model_output
        if kind == "v_prediction":
            return model_output * (-sigma / math.sqrt(sigma**2 + 1)) + sample / (sigma**2 + 1)
        return model_output

    def add_noise(self, original, noise):
        return (original + noise * self.sigmas[0]).astype(np.float32)


@_register("euler")
class EulerScheduler(_SigmaScheduler):
    defaults = {"final_sigmas_type": "zero", "use_karras_sigmas": False}

    def _final_sigma(self) -> float:
        if self.config["final_sigmas_type"] == "sigma_min":
            return math.sqrt((1 - self.alphas_cumprod[0]) / self.alphas_cumprod[0])
        return 0.0

    def step(self, model_output, i, sample, rng=None, noise=None):
        sigma = self.sigmas[i]
        x0 = self._x0_sigma(model_output, sample, sigma)
        derivative = (sample - x0) / sigma
        prev = sample + derivative * (self.sigmas[i + 1] - sigma)
        return prev.astype(np.float32), x0.astype(np.float32)


@_register("euler_a")
class EulerAncestralScheduler(_SigmaScheduler):
    def step(self, model_output, i, sample, rng=None, noise=None):
        sigma, sigma_to = self.sigmas[i], self.sigmas[i + 1]
        x0 = self._x0_sigma(model_output, sample, sigma)
        sigma_up = math.sqrt(sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2)
        sigma_down = math.sqrt(sigma_to**2 - sigma_up**2)
        prev = sample + (sample - x0) / sigma * (sigma_down - sigma)
        prev = prev + self._noise(sample.shape, rng, noise) * sigma_up
        return prev.astype(np.float32), x0.astype(np.float32)


@_register("ddim")
class DDIMScheduler(Scheduler):
    defaults = {"timestep_spacing": "leading", "clip_sample": True, "clip_sample_range": 1.0, "set_alpha_to_one": True, "eta": 0.0}

    def _schedule(self, steps: int) -> np.ndarray:
        self._stride = self.config["num_train_timesteps"] // steps
        if self.config["timestep_spacing"] == "linspace":
            n = self.config["num_train_timesteps"]
            return np.linspace(0, n - 1, steps).round()[::-1].astype(np.int64)
        return spaced_timesteps(self.config, steps).astype(np.int64)

    def _alpha_prev(self, t_prev: int) -> float:
        if t_prev >= 0:
            return float(self.alphas_cumprod[t_prev])
        return 1.0 if self.config["set_alpha_to_one"] else float(self.alphas_cumprod[0])

    def step(self, model_output, i, sample, rng=None, noise=None):
        t = int(self.timesteps[i])
        t_prev = t - self._stride
        a, a_prev = float(self.alphas_cumprod[t]), self._alpha_prev(t_prev)
        x0 = self._x0(model_output, sample, a)
        kind = self.config["prediction_type"]
        if kind == "epsilon":
            eps = model_output
        elif kind == "v_prediction":
            eps = math.sqrt(a) * model_output + math.sqrt(1 - a) * sample
        else:
            eps = (sample - math.sqrt(a) * x0) / math.sqrt(1 - a)
        if self.config["clip_sample"]:
            r = self.config["clip_sample_range"]
            x0 = np.clip(x0, -r, r)
        eta = float(self.config["eta"])
        variance = (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        std = eta * math.sqrt(variance)
        prev = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - std**2) * eps
        if eta > 0:
            prev = prev + std * self._noise(sample.shape, rng, noise)
        return prev.astype(np.float32), x0.astype(np.float32)


@_register("dpmpp_2m")
class DPMSolverPP2MScheduler(_SigmaScheduler):
    """DPM-Solver++ (2M): second-order multistep in log-SNR, first order at the ends."""

    defaults = {"lower_order_final": True, "euler_at_final": False, "final_sigmas_type": "zero", "solver_type": "midpoint", "use_karras_sigmas": False}

    def _schedule(self, steps: int) -> np.ndarray:
        n = self.config["num_train_timesteps"]
        spacing = self.config["timestep_spacing"]
        if spacing == "linspace":
            timesteps = np.linspace(0, n - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        elif spacing == "leading":
            ratio = n // (steps + 1)
            timesteps = (np.arange(0, steps + 1) * ratio).round()[::-1][:-1].astype(np.int64) + self.config["steps_offset"]
        else:
            timesteps = spaced_timesteps(self.config, steps).astype(np.int64)
        all_sigmas = np.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        if self.config["use_karras_sigmas"]:
            sigmas = karras_sigmas(all_sigmas[0], all_sigmas[-1], steps)
            timesteps = sigma_to_t(sigmas, np.log(all_sigmas))
            if self.config["beta_schedule"] != "squaredcos_cap_v2":
                timesteps = timesteps.round()
            timesteps = timesteps.astype(np.int64)
        else:
            sigmas = np.interp(timesteps, np.arange(len(all_sigmas)), all_sigmas)
        final = 0.0
        if self.config["final_sigmas_type"] == "sigma_min":
            final = float(all_sigmas[0])
        self._all_sigmas = np.concatenate([sigmas, [final]])
        return timesteps

    def set_timesteps(self, steps: int, strength: float = 1.0) -> None:
        super().set_timesteps(steps, strength)
        self.init_noise_sigma = 1.0
        self._previous_x0 = None
        self._full_len = len(self._all_sigmas) - 1

    def scale_model_input(self, sample, i):
        return sample

    @staticmethod
    def _alpha_sigma(sigma: float) -> tuple[float, float]:
        alpha = 1 / math.sqrt(sigma**2 + 1)
        return alpha, sigma * alpha

    def step(self, model_output, i, sample, rng=None, noise=None):
        k = self.begin + i  # index in the full schedule: the ends switch to first order
        if i == 0:
            # a batch reuses one scheduler: the last image's history must not reach the next
            # image's first step (it made that image differ from the same seed made alone)
            self._previous_x0 = None
        sig = self._all_sigmas
        alpha_s0, sigma_s0 = self._alpha_sigma(sig[k])
        kind = self.config["prediction_type"]
        if kind == "epsilon":
            x0 = (sample - sigma_s0 * model_output) / alpha_s0
        elif kind == "v_prediction":
            x0 = alpha_s0 * sample - sigma_s0 * model_output
        else:
            x0 = model_output
        last = k == self._full_len - 1
        first_order_final = last and (self.config["euler_at_final"] or (self.config["lower_order_final"] and self._full_len < 15) or self.config["final_sigmas_type"] == "zero")
        # sigma 0 at the end gives alpha_t = 1, sigma_t = 0 and lambda = inf; handled as the limit
        alpha_t, sigma_t = self._alpha_sigma(sig[k + 1])
        if self._previous_x0 is None or first_order_final:
            if sigma_t == 0:
                prev = x0.copy()
            else:
                h = math.log(alpha_t / sigma_t) - math.log(alpha_s0 / sigma_s0)
                prev = sigma_t / sigma_s0 * sample - alpha_t * math.expm1(-h) * x0
        else:
            alpha_s1, sigma_s1 = self._alpha_sigma(sig[k - 1])
            lam_s0, lam_s1 = math.log(alpha_s0 / sigma_s0), math.log(alpha_s1 / sigma_s1)
            h = math.log(alpha_t / sigma_t) - lam_s0
            r0 = (lam_s0 - lam_s1) / h
            d1 = (x0 - self._previous_x0) / r0
            e = math.expm1(-h)
            if self.config["solver_type"] == "heun":
                prev = sigma_t / sigma_s0 * sample - alpha_t * e * x0 + alpha_t * (e / h + 1.0) * d1
            else:
                prev = sigma_t / sigma_s0 * sample - alpha_t * e * x0 - 0.5 * alpha_t * e * d1
        self._previous_x0 = x0
        return prev.astype(np.float32), x0.astype(np.float32)

    def add_noise(self, original, noise):
        alpha, sigma = self._alpha_sigma(self._all_sigmas[self.begin])
        return (alpha * original + sigma * noise).astype(np.float32)


@_register("lcm")
class LCMScheduler(Scheduler):
    """Latent consistency sampling: few steps, each jumps to a clean estimate and re-noises."""

    defaults = {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "original_inference_steps": 50,
        "timestep_spacing": "leading",
        "timestep_scaling": 10.0,
        "clip_sample": False,
        "clip_sample_range": 1.0,
        "set_alpha_to_one": True,
    }

    def set_timesteps(self, steps: int, strength: float = 1.0) -> None:
        # LCM folds strength into its own timestep grid (as diffusers' LCM img2img does)
        n = self.config["num_train_timesteps"]
        original = int(self.config["original_inference_steps"])
        k = n // original
        origin = np.arange(1, int(original * strength) + 1) * k - 1
        if len(origin) < steps or steps > original:
            raise RequestError(
                f"LCM can take at most {min(len(origin), original)} steps at this strength; use fewer steps (LCM works best with 2-8)."
            )
        origin = origin[::-1].copy()
        idx = np.floor(np.linspace(0, len(origin), num=steps, endpoint=False)).astype(np.int64)
        self.timesteps = origin[idx]
        self.begin = 0

    def step(self, model_output, i, sample, rng=None, noise=None):
        t = int(self.timesteps[i])
        t_prev = int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else t
        a = float(self.alphas_cumprod[t])
        a_prev = float(self.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        scaled = t * self.config["timestep_scaling"]
        c_skip = 0.25 / (scaled**2 + 0.25)
        c_out = scaled / math.sqrt(scaled**2 + 0.25)
        x0 = self._x0(model_output, sample, a)
        if self.config["clip_sample"]:
            r = self.config["clip_sample_range"]
            x0 = np.clip(x0, -r, r)
        denoised = c_out * x0 + c_skip * sample
        if i != len(self.timesteps) - 1:
            prev = math.sqrt(a_prev) * denoised + math.sqrt(1 - a_prev) * self._noise(sample.shape, rng, noise)
        else:
            prev = denoised
        return prev.astype(np.float32), denoised.astype(np.float32)
