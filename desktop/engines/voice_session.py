"""The ONNX session of a voice: provider fallback, no spinning threads, and a cached
pre-optimised graph so the second load of a voice takes a third of the time.

Idle threads sleep instead of spinning: a sentence is one short run followed by
playback, and a desktop that is also drawing the window and playing audio (or a machine
shared with other work) loses more to spinning threads than the wake-up costs. Measured
on 2 busy cores: one sentence of joe-medium 0.45 s without spinning, 0.74 s with it.

On the CPU, onnxruntime spends most of a load optimising the graph. The first load saves
the graph optimised at the portable "extended" level (no CPU-specific layouts) under the
data folder, keyed by the pack's hash and the onnxruntime version; later loads start from
it (joe-medium: 0.75 s -> 0.3 s). The pack itself is never modified; a cache that cannot
be written or read just means the slow path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from pathlib import Path

from .packs import Pack
from .providers import PROVIDERS, RuntimeSettings, create_with_fallback, session_options

log = logging.getLogger(__name__)
# Two loads of the same voice can overlap (a studio and Read aloud, or two copies of one
# voice); one writer at a time, each to its own temporary file, so two writers never
# interleave in one file and a load never builds the cache twice.
_CACHE_LOCK = threading.Lock()


def _cache_path(pack: Pack) -> Path | None:
    import onnxruntime as ort

    try:
        from .library import data_dir

        key = hashlib.sha256(f"{pack.pack_hash}:{ort.__version__}:extended".encode()).hexdigest()[:24]
        folder = data_dir() / "cache" / "voices"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}.onnx"
    except OSError:
        return None


def _optimised_graph(pack: Pack, original: str, settings: RuntimeSettings) -> str:
    """Path of the cached extended-level graph, writing it on first use; else the original."""
    cached = _cache_path(pack)
    if cached is None or settings.graph_optimization != "all":
        return original
    with _CACHE_LOCK:
        return _write_cache(original, cached)


def _write_cache(original: str, cached: Path) -> str:
    import onnxruntime as ort

    if cached.is_file():
        return str(cached)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(tmp)
        opts.log_severity_level = 3
        ort.InferenceSession(original, sess_options=opts, providers=["CPUExecutionProvider"])
        os.replace(tmp, cached)  # atomic: a half-written cache is never used
        return str(cached)
    except Exception as exc:  # noqa: BLE001 - any failure just means no cache
        log.info("could not cache an optimised voice graph: %s", exc)
        tmp.unlink(missing_ok=True)
        return original


def voice_session(pack: Pack, settings: RuntimeSettings):
    import onnxruntime as ort

    original = str(pack.file_with_role("model"))
    opts = session_options(settings)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")

    def factory(name: str):
        path = _optimised_graph(pack, original, settings) if name == "cpu" else original
        try:
            return ort.InferenceSession(path, sess_options=opts, providers=[PROVIDERS[name]])
        except Exception:  # noqa: BLE001
            if path == original:
                raise
            log.warning("cached voice graph failed to load; using the pack's own")
            Path(path).unlink(missing_ok=True)
            return ort.InferenceSession(original, sess_options=opts, providers=[PROVIDERS[name]])

    return create_with_fallback(factory, settings)
