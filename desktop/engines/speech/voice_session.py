"""The ONNX session of a voice: provider fallback, no spinning threads, and a cached
pre-optimised graph so the second load of a voice takes a third of the time.

Idle threads sleep instead of spinning: a sentence is one short run followed by
playback, and a desktop that is also drawing the window and playing audio (or a machine
shared with other work) loses more to spinning threads than the wake-up costs. Measured
on 2 busy cores: one sentence of joe-medium 0.45 s without spinning, 0.74 s with it.

On the CPU, onnxruntime spends most of a load optimising the graph. The first load saves
the graph optimised at the portable "extended" level (no CPU-specific layouts) under the
data folder; later loads start from it (joe-medium: 0.75 s -> 0.3 s). The pack itself is
never modified; a cache that cannot be written or read just means the slow path.

The cache lives outside the pack, so nothing vouches for it but itself: an entry is keyed
by content (the source graph's SHA-256, the transform's version, the onnxruntime
version), a sidecar records the SHA-256 of the cached graph sealed with a key private to
this user's cache, and a load hashes the bytes it hands to onnxruntime against that record. An edited or swapped cache file is thrown
away and rebuilt from the pack, so the audio always comes from the graph provenance names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from pathlib import Path

from desktop.engines.packs.pack import Pack, sha256_file
from desktop.engines.providers import PROVIDERS, RuntimeSettings, create_with_fallback, session_options

log = logging.getLogger(__name__)
# Two loads of the same voice can overlap (a studio and Read aloud, or two copies of one
# voice); one writer at a time, each to its own temporary file, so two writers never
# interleave in one file and a load never builds the cache twice.
_CACHE_LOCK = threading.Lock()


# Bump when the transform (optimisation level, options) changes: old entries stop matching.
TRANSFORM_VERSION = "extended-1"


def _cache_path(source_sha256: str) -> Path | None:
    import onnxruntime as ort

    try:
        from desktop.engines.packs.library import data_dir

        key = hashlib.sha256(f"{source_sha256}:{TRANSFORM_VERSION}:{ort.__version__}".encode()).hexdigest()[:32]
        folder = data_dir() / "cache" / "voices"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}.onnx"
    except OSError:
        return None


def _record_path(cached: Path) -> Path:
    return cached.with_suffix(".json")


def _source_sha256(pack: Pack) -> str:
    entry = next(f for f in pack.files if f.role == "model")
    return entry.sha256


def _optimised_graph(pack: Pack, original: str, settings: RuntimeSettings) -> bytes | str:
    """The verified bytes of the cached extended-level graph (building it on first use),
    else the path of the pack's own graph."""
    source = _source_sha256(pack)
    cached = _cache_path(source)
    if cached is None or settings.graph_optimization != "all":
        return original
    with _CACHE_LOCK:
        verified = _read_verified(cached, source)
        if verified is not None:
            return verified
        _write_cache(original, cached, source)
        return _read_verified(cached, source) or original


def _read_verified(cached: Path, source: str) -> bytes | None:
    """The cached graph's bytes when its record matches this source and its hash; an
    entry that does not match is removed so it is rebuilt."""
    try:
        record = json.loads(_record_path(cached).read_text(encoding="utf-8"))
        data = cached.read_bytes()
    except (OSError, ValueError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    expected = (record.get("source_sha256"), record.get("transform"), record.get("sha256"), record.get("mac"))
    if expected != (source, TRANSFORM_VERSION, digest, _mac(cached.parent, source, digest)):
        log.warning("the cached voice graph %s does not match its record; rebuilding it from the pack", cached.name)
        cached.unlink(missing_ok=True)
        _record_path(cached).unlink(missing_ok=True)
        return None
    return data


def _write_cache(original: str, cached: Path, source: str) -> None:
    import onnxruntime as ort

    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = cached.with_name(f"{cached.name}.{tag}.part")
    tmp_record = cached.with_name(f"{cached.stem}.{tag}.json.part")
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(tmp)
        opts.log_severity_level = 3
        ort.InferenceSession(original, sess_options=opts, providers=["CPUExecutionProvider"])
        digest = sha256_file(tmp)
        record = {"source_sha256": source, "transform": TRANSFORM_VERSION, "onnxruntime": ort.__version__, "sha256": digest, "mac": _mac(cached.parent, source, digest)}
        with open(tmp_record, "x", encoding="utf-8") as fh:
            json.dump(record, fh)
        # record first: a cached graph never exists without its record (one without is
        # left over from an older scheme and removed below)
        os.replace(tmp_record, _record_path(cached))
        os.replace(tmp, cached)  # atomic: a half-written cache is never used
        _remove_unrecorded(cached.parent)
    except Exception as exc:  # noqa: BLE001 - any failure just means no cache
        log.info("could not cache an optimised voice graph: %s", exc)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_record.unlink(missing_ok=True)


def _mac(folder: Path, source: str, digest: str) -> str | None:
    """A keyed seal over (source, transform, cached hash): rewriting a record's hash after
    editing a cached graph does not make it pass. The key is private to this user's cache."""
    import hmac

    key_path = folder / ".key"
    try:
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = key_path.read_bytes()
        else:
            key = os.urandom(32)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
    except OSError:
        return None
    if len(key) != 32:  # a half-written or edited key: no cache entry verifies until it is replaced
        return None
    return hmac.new(key, f"{source}:{TRANSFORM_VERSION}:{digest}".encode(), hashlib.sha256).hexdigest()


def _remove_unrecorded(folder: Path) -> None:
    for graph in folder.glob("*.onnx"):
        if not _record_path(graph).exists():
            graph.unlink(missing_ok=True)


def voice_session(pack: Pack, settings: RuntimeSettings):
    import onnxruntime as ort

    original = str(pack.file_with_role("model"))
    opts = session_options(settings)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")

    def factory(name: str):
        graph = _optimised_graph(pack, original, settings) if name == "cpu" else original
        try:
            return ort.InferenceSession(graph, sess_options=opts, providers=[PROVIDERS[name]])
        except Exception:  # noqa: BLE001
            if graph == original:
                raise
            log.warning("cached voice graph failed to load; using the pack's own")
            cached = _cache_path(_source_sha256(pack))
            if cached is not None:
                cached.unlink(missing_ok=True)
                _record_path(cached).unlink(missing_ok=True)
            return ort.InferenceSession(original, sess_options=opts, providers=[PROVIDERS[name]])

    return create_with_fallback(factory, settings)
