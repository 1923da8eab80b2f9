"""Each numpy scheduler against its diffusers counterpart on fixed inputs.

A deterministic stand-in for the UNet (a fixed nonlinear function of the sample and the
timestep) drives both loops; stochastic schedulers get the same noise on both sides
(diffusers' ``randn_tensor`` is replaced by the test's own draws).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from desktop.engines.errors import RequestError  # noqa: E402
from desktop.engines.image.schedulers import LABELS, make_scheduler, scheduler_names  # noqa: E402

DIFFUSERS_CLASS = {
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "lcm": "LCMScheduler",
}
MODULE = {
    "euler_a": "diffusers.schedulers.scheduling_euler_ancestral_discrete",
    "ddim": "diffusers.schedulers.scheduling_ddim",
    "lcm": "diffusers.schedulers.scheduling_lcm",
}

SD15 = {  # the scheduler_config.json of Stable Diffusion 1.x
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False,
    "prediction_type": "epsilon", "timestep_spacing": "leading", "trained_betas": None,
}
VPRED_TRAILING = {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "prediction_type": "v_prediction", "timestep_spacing": "trailing"}
LINEAR_LINSPACE = {"beta_schedule": "linear", "timestep_spacing": "linspace", "clip_sample": False, "steps_offset": 0}
# The cosine schedule ends near alpha=0: sigma-space samplers overflow there in float32
# (diffusers too), so it is tested with the alpha-space ones only.
COSINE_SAMPLE = {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "leading", "prediction_type": "sample", "clip_sample": True}
CONFIGS = {"sd15": SD15, "vpred-trailing": VPRED_TRAILING, "linear-linspace": LINEAR_LINSPACE}

SHAPE = (1, 4, 8, 8)


def fake_model(sample: np.ndarray, t: float) -> np.ndarray:
    field = np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)
    return np.tanh(0.8 * sample + field * (0.5 + float(t) / 2000.0)).astype(np.float32)


def run_ours(name: str, config: dict, steps: int, noises: list, strength: float = 1.0, init: np.ndarray | None = None):
    s = make_scheduler(name, config)
    s.set_timesteps(steps, strength)
    start = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    x = s.add_noise(init, start) if init is not None else start * np.float32(s.init_noise_sigma)
    trail = []
    for i, t in enumerate(s.timesteps):
        out = fake_model(s.scale_model_input(x, i), t)
        x, _ = s.step(out, i, x, noise=noises[i])
        trail.append(x)
    return s.timesteps, trail


def run_diffusers(name: str, config: dict, steps: int, noises: list, monkeypatch, strength: float = 1.0, init: np.ndarray | None = None):
    cls = getattr(diffusers, DIFFUSERS_CLASS[name])
    s = cls.from_config(config)
    if name in MODULE:
        queue = [torch.from_numpy(n) for n in noises]
        monkeypatch.setattr(MODULE[name] + ".randn_tensor", lambda *a, **k: queue.pop(0))
    if name == "lcm":
        s.set_timesteps(steps, strength=strength)
        timesteps = s.timesteps
    else:
        s.set_timesteps(steps)
        keep = min(int(steps * strength), steps)
        t_start = max(steps - keep, 0)
        timesteps = s.timesteps[t_start:]
        if hasattr(s, "set_begin_index"):
            s.set_begin_index(t_start)
    start = torch.from_numpy(np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32))
    if init is not None:
        x = s.add_noise(torch.from_numpy(init), start, timesteps[:1])
    else:
        x = start * s.init_noise_sigma
    trail = []
    for t in timesteps:
        inp = s.scale_model_input(x, t)
        out = torch.from_numpy(fake_model(inp.numpy(), float(t)))
        kwargs = {"eta": 0.0} if name == "ddim" else {}
        x = s.step(out, t, x, return_dict=False, **kwargs)[0]
        trail.append(x.numpy())
    return timesteps.numpy(), trail


def _noises(n: int) -> list:
    rng = np.random.default_rng(11)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(n)]


def test_all_five_schedulers_are_offered():
    assert scheduler_names() == ["euler", "euler_a", "ddim", "dpmpp_2m", "lcm"]
    assert set(LABELS) == set(scheduler_names())


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("name", ["euler", "euler_a", "ddim", "dpmpp_2m"])
@pytest.mark.parametrize("steps", [4, 20])
def test_matches_diffusers(name, config_name, steps, monkeypatch):
    config = CONFIGS[config_name]
    noises = _noises(steps)
    ours_t, ours = run_ours(name, config, steps, noises)
    ref_t, ref = run_diffusers(name, config, steps, noises, monkeypatch)
    np.testing.assert_allclose(ours_t.astype(np.float64), ref_t.astype(np.float64), rtol=1e-5, atol=1e-3)
    assert len(ours) == len(ref) == steps
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m"])
def test_cosine_schedule_sample_prediction_matches_diffusers(name, monkeypatch):
    noises = _noises(12)
    ours_t, ours = run_ours(name, COSINE_SAMPLE, 12, noises)
    ref_t, ref = run_diffusers(name, COSINE_SAMPLE, 12, noises, monkeypatch)
    np.testing.assert_array_equal(ours_t, ref_t)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("config_name", ["sd15", "vpred-trailing"])
@pytest.mark.parametrize("steps", [1, 4, 8])
def test_lcm_matches_diffusers(config_name, steps, monkeypatch):
    config = CONFIGS[config_name]
    noises = _noises(steps)
    ours_t, ours = run_ours("lcm", config, steps, noises)
    ref_t, ref = run_diffusers("lcm", config, steps, noises, monkeypatch)
    np.testing.assert_array_equal(ours_t, ref_t)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", ["euler", "euler_a", "ddim", "dpmpp_2m", "lcm"])
def test_img2img_strength_matches_diffusers(name, monkeypatch):
    steps, strength = 10, 0.6
    init = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32) * 0.5
    noises = _noises(steps)
    ours_t, ours = run_ours(name, SD15, steps, noises, strength, init)
    ref_t, ref = run_diffusers(name, SD15, steps, noises, monkeypatch, strength, init)
    assert len(ours) == len(ref)
    # strength < 1 starts later in the schedule: fewer steps, or (LCM) lower timesteps
    assert 0 < len(ours) < steps or (name == "lcm" and ours_t[0] < 600)
    np.testing.assert_allclose(ours_t.astype(np.float64), ref_t.astype(np.float64), atol=1e-3)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m"])
def test_karras_sigmas_match_diffusers(name, monkeypatch):
    config = dict(SD15, use_karras_sigmas=True)
    noises = _noises(15)
    ours_t, ours = run_ours(name, config, 15, noises)
    ref_t, ref = run_diffusers(name, config, 15, noises, monkeypatch)
    np.testing.assert_allclose(ours_t.astype(np.float64), ref_t.astype(np.float64), atol=1e-3)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def test_zero_terminal_snr_matches_diffusers(monkeypatch):
    config = dict(VPRED_TRAILING, rescale_betas_zero_snr=True)
    noises = _noises(6)
    _, ours = run_ours("euler", config, 6, noises)
    _, ref = run_diffusers("euler", config, 6, noises, monkeypatch)
    np.testing.assert_allclose(ours[-1], ref[-1], rtol=1e-3, atol=1e-3)


def test_unknown_scheduler_and_schedule_are_clear_errors():
    with pytest.raises(RequestError, match="Unknown scheduler 'plms'"):
        make_scheduler("plms", SD15)
    with pytest.raises(RequestError, match="beta schedule 'sigmoid'"):
        make_scheduler("euler", {"beta_schedule": "sigmoid"})
    with pytest.raises(RequestError, match="at most"):
        make_scheduler("lcm", SD15).set_timesteps(80)


@pytest.mark.parametrize("strength", [1.0, 0.6])
@pytest.mark.parametrize("name", ["euler", "euler_a", "ddim", "dpmpp_2m", "lcm"])
def test_a_batch_reusing_one_scheduler_makes_each_image_as_if_alone(name, strength):
    """The denoising loop runs every image of a batch through one scheduler: a multistep
    scheduler must not carry the previous image's history into the next image's first step."""
    import warnings

    def run(sched, seed):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
        for i, t in enumerate(sched.timesteps):
            out = np.tanh(x * 0.5 + float(t) / 1000).astype(np.float32)  # a stand-in model, deterministic
            x, _ = sched.step(out, i, sched.scale_model_input(x, i), np.random.default_rng(seed + i))
        return x

    shared = make_scheduler(name)
    shared.set_timesteps(6, strength)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the leaked history divided by a zero sigma
        run(shared, 1)
        second = run(shared, 2)
    alone = make_scheduler(name)
    alone.set_timesteps(6, strength)
    np.testing.assert_array_equal(second, run(alone, 2))
