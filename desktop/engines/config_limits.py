"""Sane bounds for the numbers a pack's config declares, checked before anything is sized
from them.

A pack is data from anywhere. A voice declaring 300 million speakers made the engine
build 300 million speaker names (15 s, gigabytes) just to print an error; an image pack
with a sample size of 10^9 asks for a latent of 10^18 floats. Each number is checked
where it is read, against a range far wider than any real model uses, so the check
costs nothing and the error names the field.
"""

from __future__ import annotations

import math
from typing import Any

from desktop.engines.errors import PackFormatError

# (lowest, highest) accepted value of each config number; names as in the manifests
BOUNDS: dict[str, tuple[float, float]] = {
    # speech
    "sample_rate": (4000, 192_000),
    "num_speakers": (1, 10_000),
    "speaker_id_map": (0, 10_000),  # entries
    "speaker_id": (0, 9_999),
    "phoneme_id_map": (1, 20_000),  # entries
    "phoneme_ids_per_symbol": (1, 64),
    "phoneme_id": (0, 1_000_000),
    "blank_id": (0, 1_000_000),
    "hop_length": (1, 8192),
    "noise_scale": (0.0, 10.0),
    "length_scale": (0.01, 100.0),
    "noise_w": (0.0, 10.0),
    "vocab": (1, 1_000_000),  # entries
    # image
    "sample_size": (1, 4096),
    "vae_scale_factor": (1, 64),
    "latent_channels": (1, 256),
    "size_multiple": (1, 1024),
    "default_steps": (1, 1000),
    "default_guidance": (0.0, 100.0),
    "vae_decoder_channels": (1, 4096),
    "levels": (2, 65_536),
    "receptive_rows": (1, 4096),
    "z_dim": (1, 65_536),
    "image_size": (1, 8192),  # each side
    "classes": (0, 100_000),  # entries
    # text
    "context_length": (8, 1 << 24),  # a declaration; the KV cache is still capped by Settings > context window
}


def _fail(pack_name: str, key: str, value: Any, what: str = "") -> PackFormatError:
    lo, hi = BOUNDS[key]
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    return PackFormatError(f"Pack '{pack_name}' declares {what or key} = {shown}; expected a number from {lo:g} to {hi:g}. Re-export or re-import it.")


def bounded_int(value: Any, key: str, pack_name: str, what: str = "") -> int:
    """``value`` as an int within ``BOUNDS[key]``, else a PackFormatError naming the field."""
    lo, hi = BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _fail(pack_name, key, value, what)
    try:
        number = int(value) if not isinstance(value, float) else (int(value) if value.is_integer() else None)
    except (ValueError, OverflowError):
        number = None
    if number is None or not lo <= number <= hi:
        raise _fail(pack_name, key, value, what)
    return number


def bounded_float(value: Any, key: str, pack_name: str, what: str = "") -> float:
    lo, hi = BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _fail(pack_name, key, value, what)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _fail(pack_name, key, value, what) from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise _fail(pack_name, key, value, what)
    return number


def config_int(cfg: dict, key: str, default: int, pack_name: str) -> int:
    return bounded_int(cfg.get(key, default) if cfg.get(key) is not None else default, key, pack_name)


def config_float(cfg: dict, key: str, default: float, pack_name: str) -> float:
    return bounded_float(cfg.get(key, default) if cfg.get(key) is not None else default, key, pack_name)


def bounded_len(container: Any, key: str, pack_name: str, what: str = "") -> None:
    """A map or list from a config may hold at most ``BOUNDS[key][1]`` entries."""
    lo, hi = BOUNDS[key]
    n = len(container) if hasattr(container, "__len__") else 0
    if not lo <= n <= hi:
        raise PackFormatError(f"Pack '{pack_name}' declares {n:,} entries in {what or key}; expected {lo:g} to {hi:g}. Re-export or re-import it.")
