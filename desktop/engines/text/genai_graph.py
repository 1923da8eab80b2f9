"""An onnxruntime-genai pack's decoder graph, run with plain onnxruntime.

Why not genai's own Python binding: its ``append_tokens`` / ``generate_next_token`` hold
the GIL for the whole native call, so while a prompt is read no other Python thread -
the window, the API server's event loop - runs at all (a 4,000-token prompt froze them
for 27 s; chunking it only turned that into ~100-290 ms freezes, one per chunk, because a
16-token chunk alone costs that much on this CPU). ``InferenceSession.run_with_iobinding``
lets go of the GIL while the graph runs, so other threads keep their time and several
streams of one model decode at once on several cores.

The graph is the one genai would run (GroupQueryAttention reading the KV cache, position
ids and sequence lengths computed inside from ``attention_mask``); its tensor names come
from the pack's ``genai_config.json``. As genai does with ``past_present_share_buffer``,
past and present KV are bound to the same buffer, which GQA updates in place: a step
writes only the new tokens' keys and values, nothing is copied, and rewinding is just
forgetting positions (the mask says how many are valid). The buffer grows by doubling up
to the context window rather than being reserved whole, so idle or short streams stay
small.

A decode step of a small model takes a few milliseconds, so what Python does around the
run counts: each stream keeps one IO binding with its KV buffers bound once (rebound only
when the buffer grows), the mask is a view of one array of ones, and a one-token step
writes its logits into a buffer bound once instead of fetching every output's wrapper.
"""

from __future__ import annotations

import numpy as np

from desktop.engines.config_limits import bounded_int
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import PROVIDERS, RuntimeSettings, make_session, resolve_order
from desktop.engines.text.runtime_config import check_genai_config

FIRST_BUFFER = 256  # tokens of KV buffer a fresh stream gets; doubled when full


class NotForThisPack(PackFormatError):
    """The pack is a valid genai pack this path does not cover (another graph layout, a
    GPU provider); the caller falls back to genai's own runtime."""


class GraphLayout:
    """Tensor names and KV geometry, read from genai_config.json and checked against the graph."""

    def __init__(self, pack: Pack, genai_cfg: dict, session):
        model = genai_cfg.get("model", {})
        decoder = model.get("decoder", {})
        if "sliding_window" in decoder:
            raise NotForThisPack("sliding-window KV caches are left to onnxruntime-genai")
        names_in, names_out = decoder.get("inputs", {}), decoder.get("outputs", {})
        self.input_ids = names_in.get("input_ids", "input_ids")
        self.attention_mask = names_in.get("attention_mask", "attention_mask")
        self.position_ids = names_in.get("position_ids", "position_ids")
        self.logits = names_out.get("logits", "logits")
        layers = _geometry(decoder.get("num_hidden_layers"), "num_hidden_layers", 1024, pack.name)
        self.past = [_layer_name(names_in, kind, i) for i in range(layers) for kind in ("past_key_names", "past_value_names")]
        self.present = [_layer_name(names_out, kind, i) for i in range(layers) for kind in ("present_key_names", "present_value_names")]
        self.share_buffer = bool(genai_cfg.get("search", {}).get("past_present_share_buffer", False))

        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        expected_in = [self.input_ids, self.attention_mask, *self.past]
        missing = [n for n in expected_in if n not in inputs] + [n for n in [self.logits, *self.present] if n not in outputs]
        extra = set(inputs) - set(expected_in) - {self.position_ids}
        if missing or extra:
            raise NotForThisPack(f"decoder graph inputs/outputs differ from genai_config.json (missing {missing[:3]}, unexpected {sorted(extra)[:3]})")
        self.has_positions = self.position_ids in inputs
        first = inputs[self.past[0]]
        heads = first.shape[1] if isinstance(first.shape[1], int) else decoder.get("num_key_value_heads")
        self.kv_heads = _geometry(heads, "num_key_value_heads", 1024, pack.name)
        self.head_size = _geometry(decoder.get("head_size"), "head_size", 4096, pack.name)
        self.kv_dtype = {"tensor(float16)": np.float16, "tensor(float)": np.float32}.get(first.type)
        if self.kv_dtype is None:
            raise NotForThisPack(f"KV cache of type {first.type}")
        self.ids_dtype = np.int32 if inputs[self.input_ids].type == "tensor(int32)" else np.int64
        self.mask_dtype = np.int32 if inputs[self.attention_mask].type == "tensor(int32)" else np.int64


class KVBuffers:
    """One stream's KV cache: a [1, heads, length, head_size] array per past input."""

    def __init__(self, layout: GraphLayout, length: int):
        self.arrays = [np.zeros((1, layout.kv_heads, length, layout.head_size), dtype=layout.kv_dtype) for _ in layout.past]

    @property
    def length(self) -> int:
        return self.arrays[0].shape[2]

    def resized(self, layout: GraphLayout, length: int, keep: int) -> "KVBuffers":
        grown = KVBuffers(layout, length)
        for old, new in zip(self.arrays, grown.arrays):
            new[:, :, :keep] = old[:, :, :keep]
        return grown


class GenaiGraphBackend:
    """DecoderBackend over a genai pack's graph (see the module docstring). ``fork()``
    gives another stream over the same session: its own KV cache, a copy of this one's."""

    def __init__(self, pack: Pack, settings: RuntimeSettings, context_window: int, *, _shared=None):
        if _shared is not None:
            self._session, self.provider, self.layout, self.capacity = _shared
        else:
            self._open(pack, settings, context_window)
        self._kv: KVBuffers | None = None
        self._count = 0
        self._io = None  # the IO binding with self._kv bound, made when the buffer is
        self._kv_values: list = []  # OrtValues over self._kv's arrays, alive as long as self._io
        self._ones = np.ones((1, 0), dtype=self.layout.mask_dtype)
        self._step_logits = None  # [1, 1, vocab] buffer a one-token step writes into

    def _open(self, pack: Pack, settings: RuntimeSettings, context_window: int) -> None:
        import onnxruntime as ort

        genai_cfg = pack.read_json("genai_config.json")
        if genai_cfg is None:
            raise PackFormatError(f"Pack '{pack.name}' (onnxruntime-genai) lists no genai_config.json.")
        check_genai_config(genai_cfg, pack.name)
        order, _ = resolve_order(settings.provider, ort.get_available_providers())
        if order[0] != "cpu":
            # On a GPU the KV buffers would have to live on the device; genai does that.
            raise NotForThisPack(f"the {order[0].upper()} provider is left to onnxruntime-genai")
        decoder = genai_cfg.get("model", {}).get("decoder", {})
        filename = decoder.get("filename")
        if not isinstance(filename, str) or not pack.has_file(filename):
            raise NotForThisPack("the decoder graph file is not a listed file of the pack")
        model_ctx = int(genai_cfg.get("model", {}).get("context_length") or context_window)
        self.capacity = min(bounded_int(model_ctx, "context_length", pack.name), context_window)
        self._session, self.provider = make_session(str(pack.path_of(filename)), settings, [PROVIDERS["cpu"]])
        self.layout = GraphLayout(pack, genai_cfg, self._session)

    def fork(self) -> "GenaiGraphBackend":
        """An independent stream of the same model, starting from this one's cache."""
        other = GenaiGraphBackend(None, None, 0, _shared=(self._session, self.provider, self.layout, self.capacity))
        if self._kv is not None and self._count:
            other._kv = self._kv.resized(self.layout, self._kv.length, self._count)
            other._count = self._count
        return other

    def extend(self, tokens: list[int]) -> np.ndarray:
        if self._session is None:
            raise EngineError("The text model was closed.")
        n = len(tokens)
        total = self._count + n
        if total > self.capacity:
            raise EngineError(f"The text model's cache holds {self.capacity:,} tokens; {total:,} were asked for.")
        try:
            logits = self._run(np.asarray([tokens], dtype=self.layout.ids_dtype), total)
        except Exception as exc:  # the runtime's own errors are opaque; say what happened
            self._kv, self._count = None, 0  # a half-written cache is not trusted again
            raise EngineError(f"The text runtime failed while processing tokens: {exc}") from exc
        self._count = total
        return logits

    def _run(self, ids: np.ndarray, total: int) -> np.ndarray:
        layout = self.layout
        if not layout.share_buffer:
            return self._run_copying(ids, total)
        io = self._bound(total)
        io.bind_cpu_input(layout.input_ids, ids)
        if self._ones.shape[1] < total:
            self._ones = np.ones((1, self._kv.length), dtype=layout.mask_dtype)
        io.bind_cpu_input(layout.attention_mask, self._ones[:, :total])  # a contiguous view
        if layout.has_positions:
            io.bind_cpu_input(layout.position_ids, np.arange(self._count, total, dtype=np.int64)[None])
        step = ids.shape[1] == 1 and self._step_logits is not None
        if step:
            io.bind_ortvalue_output(layout.logits, self._step_logits[1])
        else:
            io.bind_output(layout.logits, "cpu")
        self._session.run_with_iobinding(io)  # the GIL is released for the whole run
        if step:
            return self._step_logits[0][0, -1].copy()
        logits = io.get_outputs()[-1].numpy()
        if ids.shape[1] == 1 and logits.dtype == np.float32:  # keep this buffer for the next steps
            self._step_logits = (logits, _ortvalue(logits))
            return logits[0, -1].copy()  # not a view: the next step writes into this buffer
        return np.asarray(logits[0, -1], dtype=np.float32)

    def _bound(self, total: int):
        """The IO binding over this stream's KV buffer, which GQA updates in place."""
        if self._kv is None or self._kv.length < total or self._io is None:
            self._reserve(total)
            io = self._session.io_binding()
            self._kv_values = [_ortvalue(array) for array in self._kv.arrays]  # kept alive with the binding
            for past, present, value in zip(self.layout.past, self.layout.present, self._kv_values):
                io.bind_ortvalue_input(past, value)
                io.bind_ortvalue_output(present, value)  # written in place: nothing is copied
            self._io = io
        return self._io

    def _run_copying(self, ids: np.ndarray, total: int) -> np.ndarray:
        """Packs whose config does not share past and present: the cache is copied each step."""
        layout = self.layout
        io = self._session.io_binding()
        io.bind_cpu_input(layout.input_ids, ids)
        io.bind_cpu_input(layout.attention_mask, np.ones((1, total), dtype=layout.mask_dtype))
        if layout.has_positions:
            io.bind_cpu_input(layout.position_ids, np.arange(self._count, total, dtype=np.int64)[None])
        kv = self._kv or KVBuffers(layout, 0)
        for past, present, array in zip(layout.past, layout.present, kv.arrays):
            io.bind_cpu_input(past, np.ascontiguousarray(array[:, :, : self._count]))
            io.bind_output(present, "cpu")
        io.bind_output(layout.logits, "cpu")
        self._session.run_with_iobinding(io)
        outputs = io.get_outputs()
        grown = KVBuffers.__new__(KVBuffers)
        grown.arrays = [value.numpy() for value in outputs[: len(layout.present)]]
        self._kv = grown
        return np.asarray(outputs[-1].numpy()[0, -1], dtype=np.float32)

    def _reserve(self, total: int) -> None:
        if self._kv is not None and self._kv.length >= total:
            return
        length = max(FIRST_BUFFER, total)
        if self._kv is not None:
            length = max(length, 2 * self._kv.length)
        length = min(length, self.capacity)
        self._kv = self._kv.resized(self.layout, length, self._count) if self._kv is not None else KVBuffers(self.layout, length)

    def rewind(self, length: int) -> None:
        # Positions past ``length`` are simply not valid any more: the next call's mask is
        # shorter and GQA overwrites them.
        self._count = max(0, min(length, self._count))
        if self._count == 0:
            self._kv = None

    @property
    def cached(self) -> int:
        return self._count

    def close(self) -> None:
        self._session = None
        self._kv = None
        self._io, self._kv_values, self._step_logits = None, [], None
        self._count = 0


def _geometry(value, key: str, highest: int, pack_name: str) -> int:
    """A count the KV buffers are sized from, checked before anything is allocated."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise PackFormatError(f"Pack '{pack_name}' declares {key} = {str(value)[:40]}; expected a whole number from 1 to {highest}.")
    return value


def _layer_name(names: dict, kind: str, layer: int) -> str:
    pattern = names.get(kind)
    if not isinstance(pattern, str) or "%d" not in pattern:
        raise NotForThisPack(f"genai_config.json names no {kind} pattern")
    return pattern.replace("%d", str(layer))


def _ortvalue(array: np.ndarray):
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_numpy(array)  # shares the array's memory
