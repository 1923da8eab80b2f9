"""Decoder runtimes behind the text engine, both driven as an explicit token loop.

A backend owns the model and its KV cache and offers three things: feed tokens and get
the logits of the last one, rewind the cache to a prefix, and report its capacity. The
engine decides which tokens to feed, so multi-turn cache reuse, sampling and stopping
live in one place whichever runtime runs the graph.

* ``GenaiGraphBackend`` (genai_graph.py) - the default for onnxruntime-genai packs
  (built by its model builder: fused GroupQueryAttention, in-place KV buffer,
  MatMulNBits): the pack's graph run by plain onnxruntime, which releases the GIL.
* ``GenaiBackend``  - the same packs through genai's own Python binding, which holds
  the GIL for every call. Used where the graph path does not apply (a GPU provider,
  sliding-window caches) or when ``ATELIER_TEXT_BACKEND=binding`` asks for it.
* ``OrtDecoderBackend`` - plain onnxruntime for optimum-style decoders with
  ``past_key_values.N.key/value`` inputs (e.g. GPT-2 exports, onnx-community folders).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from desktop.engines.config_limits import bounded_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.packs.pack import Pack
from desktop.engines.text.genai_graph import GenaiGraphBackend, NotForThisPack
from desktop.engines.text.runtime_config import check_genai_config
from desktop.engines.providers import PROVIDERS, ProviderReport, RuntimeSettings, create_with_fallback, make_session

log = logging.getLogger(__name__)
_BACKENDS: dict[str, type] = {}
# How an onnxruntime-genai pack is run: "graph" (default) or "binding" (genai's own).
BACKEND_ENV = "ATELIER_TEXT_BACKEND"


def backend(runtime: str):
    def deco(cls):
        _BACKENDS[runtime] = cls
        return cls

    return deco


def open_backend(pack: Pack, settings: RuntimeSettings, context_window: int) -> "DecoderBackend":
    cls = _BACKENDS.get(pack.runtime)
    if cls is None:
        raise PackFormatError(f"Text runtime '{pack.runtime}' is not supported (supported: {', '.join(sorted(_BACKENDS))}).")
    if cls is GenaiBackend:
        choice = os.environ.get(BACKEND_ENV, "graph").strip().lower() or "graph"
        if choice not in ("graph", "binding"):
            raise PackFormatError(f"{BACKEND_ENV} must be 'graph' or 'binding' (got '{choice[:40]}').")
        if choice == "graph":
            try:
                return GenaiGraphBackend(pack, settings, context_window)
            except NotForThisPack as exc:
                log.info("pack %s runs on onnxruntime-genai's binding: %s", pack.name, exc)
    return cls(pack, settings, context_window)


class DecoderBackend:
    capacity: int  # tokens the cache can hold
    provider: ProviderReport

    def extend(self, tokens: list[int]) -> np.ndarray:
        """Feed tokens after those already cached; return the last position's logits."""
        raise NotImplementedError

    def rewind(self, length: int) -> None:
        """Keep only the first ``length`` cached tokens."""
        raise NotImplementedError

    @property
    def cached(self) -> int:
        raise NotImplementedError

    def fork(self) -> "DecoderBackend":
        """Another stream over the same loaded model with its own cache, so two threads
        can decode at once (a backend itself serves one stream at a time)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


@backend("onnxruntime-genai")
class GenaiBackend(DecoderBackend):
    def __init__(self, pack: Pack, settings: RuntimeSettings, context_window: int):
        import onnxruntime_genai as og

        # Nothing leaves the machine: genai's own telemetry hook is switched off.
        if hasattr(og, "disable_telemetry_events"):
            og.disable_telemetry_events()
        self._og = og
        # genai reads the file itself and acts on it (a custom-ops library is native code
        # it would load): it is checked against the allowlist here, whoever opened the
        # engine, and genai gets the pack folder only when nothing outside it is set.
        genai_cfg = pack.read_json("genai_config.json")
        if genai_cfg is None:
            raise PackFormatError(f"Pack '{pack.name}' (onnxruntime-genai) lists no genai_config.json.")
        check_genai_config(genai_cfg, pack.name)
        model_ctx = int(genai_cfg.get("model", {}).get("context_length") or context_window)
        self.capacity = min(bounded_int(model_ctx, "context_length", pack.name), context_window)

        def factory(name: str):
            cfg = og.Config(str(pack.root))
            cfg.clear_providers()
            if name != "cpu":
                cfg.append_provider({"cuda": "cuda", "directml": "dml"}[name])
            if settings.threads:
                cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": settings.threads, "inter_op_num_threads": 1}}}}))
            return og.Model(cfg)

        self._model, self.provider = create_with_fallback(factory, settings, _genai_available(og))
        self._generator = None
        self._count = 0

    def fork(self) -> "GenaiBackend":
        # genai generators of one model are independent; the cache is not copied (the
        # binding offers no way to), so the fork starts empty and reads its prompt again.
        other = object.__new__(GenaiBackend)
        other._og, other._model, other.provider, other.capacity = self._og, self._model, self.provider, self.capacity
        other._generator, other._count = None, 0
        return other

    def _new_generator(self):
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(max_length=self.capacity)
        self._generator = self._og.Generator(self._model, params)
        self._count = 0

    def extend(self, tokens: list[int]) -> np.ndarray:
        if self._generator is None:
            self._new_generator()
        try:
            self._generator.append_tokens(np.asarray(tokens, dtype=np.int32))
            self._count += len(tokens)
            return np.asarray(self._generator.get_logits())[0, -1]
        except Exception as exc:  # the runtime's own errors are opaque; say what happened
            self._generator = None
            raise EngineError(f"The text runtime failed while processing tokens: {exc}") from exc

    def rewind(self, length: int) -> None:
        if self._generator is None or length <= 0:
            self._generator = None
            return
        self._generator.rewind_to(length)
        self._count = length

    @property
    def cached(self) -> int:
        return self._count if self._generator is not None else 0

    def close(self) -> None:
        self._generator = None
        self._model = None


def _genai_available(og) -> list[str]:
    available = [PROVIDERS["cpu"]]
    if getattr(og, "is_cuda_available", lambda: False)():
        available.insert(0, PROVIDERS["cuda"])
    if getattr(og, "is_dml_available", lambda: False)():
        available.insert(0, PROVIDERS["directml"])
    return available


@backend("onnxruntime")
class OrtDecoderBackend(DecoderBackend):
    """An optimum-style decoder: inputs input_ids, attention_mask, [position_ids],
    past_key_values.{i}.key/value; outputs logits, present.{i}.key/value."""

    def __init__(self, pack: Pack, settings: RuntimeSettings, context_window: int):
        self._session, self.provider = make_session(str(pack.file_with_role("decoder")), settings)
        self.capacity = min(bounded_int(pack.manifest.get("context_length") or context_window, "context_length", pack.name), context_window)
        inputs = {i.name: i for i in self._session.get_inputs()}
        self._past_names = sorted((n for n in inputs if n.startswith("past_key_values.")), key=_layer_order)
        self._present_names = [n.replace("past_key_values.", "present.") for n in self._past_names]
        self._has_positions = "position_ids" in inputs
        self._has_mask = "attention_mask" in inputs
        self._output_names = ["logits", *self._present_names]
        missing = [n for n in self._output_names if n not in {o.name for o in self._session.get_outputs()}]
        if missing:
            raise PackFormatError(f"Decoder graph lacks outputs {missing}; it is not a KV-cache decoder export.")
        self._empty: dict[str, np.ndarray] = {}
        for name in self._past_names:
            shape = inputs[name].shape  # [batch, heads, seq, head_dim]
            heads, head_dim = shape[1], shape[3]
            if not isinstance(heads, int) or not isinstance(head_dim, int):
                raise PackFormatError(f"Decoder input {name} has no fixed head count/size: {shape}.")
            self._empty[name] = np.zeros((1, heads, 0, head_dim), dtype=_np_dtype(inputs[name].type))
        self._past: dict[str, np.ndarray] = dict(self._empty)
        self._count = 0

    def extend(self, tokens: list[int]) -> np.ndarray:
        n = len(tokens)
        feed: dict[str, Any] = {"input_ids": np.asarray([tokens], dtype=np.int64)}
        if self._has_mask:
            feed["attention_mask"] = np.ones((1, self._count + n), dtype=np.int64)
        if self._has_positions:
            feed["position_ids"] = np.arange(self._count, self._count + n, dtype=np.int64)[None]
        feed.update(self._past)
        try:
            outs = self._session.run(self._output_names, feed)
        except Exception as exc:
            raise EngineError(f"The text runtime failed while processing tokens: {exc}") from exc
        self._past = dict(zip(self._past_names, outs[1:]))
        self._count += n
        return outs[0][0, -1]

    def fork(self) -> "OrtDecoderBackend":
        other = object.__new__(OrtDecoderBackend)
        other.__dict__.update(self.__dict__)
        other._past = dict(self._past)  # arrays are replaced, never written, so sharing them is safe
        return other

    def rewind(self, length: int) -> None:
        length = max(0, min(length, self._count))
        self._past = {k: v[:, :, :length] for k, v in self._past.items()} if length else dict(self._empty)
        self._count = length

    @property
    def cached(self) -> int:
        return self._count

    def close(self) -> None:
        self._session = None
        self._past = {}


def _layer_order(name: str) -> tuple[int, str]:
    parts = name.split(".")
    return (int(parts[1]) if parts[1].isdigit() else 0, parts[-1])


def _np_dtype(ort_type: str):
    return {"tensor(float16)": np.float16, "tensor(float)": np.float32}.get(ort_type, np.float32)
