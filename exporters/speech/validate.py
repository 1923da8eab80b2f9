"""Numerical validation of a voice pack against its PyTorch source, with the noise at zero.

With noise_scale = noise_w = 0 VITS is deterministic, so the ONNX waveform can be
compared sample by sample with PyTorch's (max and mean |Δ|). Quantized graphs may round a
duration differently, changing the length; then a log-mel distance over the common frames
and the length difference say how close it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

VALIDATION_SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "a quiet voice can carry a long way",
)


def log_mel(wave: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 256, mels: int = 80) -> np.ndarray:
    """[frames, mels] log-mel spectrogram (numpy only; enough for a distance)."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    window = np.hanning(n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop] * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    hz = np.linspace(0, rate / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(0, 2595 * np.log10(1 + (rate / 2) / 700), mels + 2)
    edges = 700 * (10 ** (mel_pts / 2595) - 1)
    bank = np.zeros((mels, hz.size))
    for i in range(mels):
        lo, mid, hi = edges[i : i + 3]
        bank[i] = np.clip(np.minimum((hz - lo) / (mid - lo + 1e-9), (hi - hz) / (hi - mid + 1e-9)), 0, None)
    return np.log(np.maximum(power @ bank.T, 1e-10))


def compare(ref: np.ndarray, got: np.ndarray, rate: int) -> dict[str, Any]:
    ref, got = ref.reshape(-1), got.reshape(-1)
    n = min(ref.size, got.size)
    report: dict[str, Any] = {"samples_reference": int(ref.size), "samples_onnx": int(got.size), "same_length": ref.size == got.size}
    diff = np.abs(ref[:n] - got[:n]) if n else np.zeros(1)
    report["max_abs_diff"] = float(diff.max())
    report["mean_abs_diff"] = float(diff.mean())
    a, b = log_mel(ref[:n], rate), log_mel(got[:n], rate)
    report["log_mel_l1"] = float(np.abs(a - b).mean())
    return report


def validate_voice(
    onnx_path,
    reference: Callable[[Sequence[int], int], np.ndarray],
    id_sequences: Sequence[Sequence[int]],
    rate: int,
    sid: int = 0,
) -> dict[str, Any]:
    """Run every id sequence through the pack's graph and ``reference(ids, sid)`` (PyTorch,
    noise at zero) and aggregate the worst figures."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    reports = []
    for ids in id_sequences:
        feed = {"input": np.asarray([ids], dtype=np.int64), "input_lengths": np.asarray([len(ids)], dtype=np.int64), "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)}
        if "sid" in inputs:
            feed["sid"] = np.asarray([sid], dtype=np.int64)
        for name, info in inputs.items():
            if name.startswith("noise_"):
                feed[name] = np.zeros([d if isinstance(d, int) else 1 for d in info.shape], dtype=np.float32)
        got = session.run(None, feed)[0]
        reports.append(compare(reference(ids, sid), got, rate))
    return {
        "sentences": len(reports),
        "noise": "zero (noise_scale = noise_w = 0)",
        "max_abs_diff": round(max(r["max_abs_diff"] for r in reports), 6),
        "mean_abs_diff": round(float(np.mean([r["mean_abs_diff"] for r in reports])), 7),
        "log_mel_l1": round(max(r["log_mel_l1"] for r in reports), 5),
        "all_same_length": all(r["same_length"] for r in reports),
        "length_ratio_worst": round(max(max(r["samples_onnx"], 1, r["samples_reference"]) / max(min(r["samples_onnx"], r["samples_reference"]), 1) for r in reports), 4),
        "reference": "PyTorch fp32",
    }
