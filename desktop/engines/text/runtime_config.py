"""What a pack may say to a runtime: an allowlist for onnxruntime-genai's config.

onnxruntime-genai reads ``genai_config.json`` from the pack folder itself and acts on it:
``session_options.custom_ops_library`` makes it load a native library (code), and
``enable_profiling`` makes every job write a trace where the pack says. A pack is data,
so its runtime config may hold only the model description and harmless tuning values
listed here; any other key is refused by name at import and at load. Every other JSON
file a pack lists is scanned for the keys ONNX Runtime knows as code or file hooks, so a
config another runtime might read (an optimum folder's, an ``ort_config``) cannot smuggle
one in either.
"""

from __future__ import annotations

from typing import Any

from desktop.engines.errors import PackFormatError

_INT, _NUM, _BOOL, _STR = (int,), (int, float), (bool,), (str,)
_NAMES = "names"  # a map of tensor names: any key, short text values
_PROVIDERS = "providers"

_SESSION_OPTIONS = {
    "log_id": _STR,
    "provider_options": _PROVIDERS,
    "intra_op_num_threads": _INT,
    "inter_op_num_threads": _INT,
    "enable_cpu_mem_arena": _BOOL,
    "enable_mem_pattern": _BOOL,
    "graph_optimization_level": _STR,
    "log_severity_level": _INT,
}
_SLIDING_WINDOW = {"window_size": _INT, "pad_value": _INT, "alignment": _STR, "slide_key_value_cache": _BOOL, "slide_inputs": _BOOL}
_DECODER = {
    "session_options": _SESSION_OPTIONS,
    "filename": _STR,
    "head_size": _INT,
    "hidden_size": _INT,
    "inputs": _NAMES,
    "outputs": _NAMES,
    "num_attention_heads": _INT,
    "num_hidden_layers": _INT,
    "num_key_value_heads": _INT,
    "sliding_window": _SLIDING_WINDOW,
}
_TOKEN_IDS = (int, list)
_MODEL = {
    "bos_token_id": _TOKEN_IDS,
    "eos_token_id": _TOKEN_IDS,
    "pad_token_id": _TOKEN_IDS,
    "sep_token_id": _TOKEN_IDS,
    "decoder_start_token_id": _TOKEN_IDS,
    "context_length": _INT,
    "type": _STR,
    "vocab_size": _INT,
    "decoder": _DECODER,
}
_SEARCH = {
    key: _NUM + _BOOL
    for key in (
        "diversity_penalty", "do_sample", "early_stopping", "length_penalty", "max_length", "min_length",
        "no_repeat_ngram_size", "num_beams", "num_return_sequences", "past_present_share_buffer",
        "repetition_penalty", "temperature", "top_k", "top_p", "random_seed",
    )
}
GENAI_SCHEMA = {"model": _MODEL, "search": _SEARCH}
# Execution-provider tuning a pack may carry (Atelier replaces the providers at load anyway).
_PROVIDER_NAMES = {"cuda", "dml", "webgpu", "rocm", "coreml", "qnn", "openvino"}
_PROVIDER_OPTIONS = {"enable_cuda_graph", "enable_skip_layer_norm_strict_mode", "prefer_nhwc", "use_tf32", "tunable_op_enable", "tunable_op_tuning_enable", "device_id"}

# Keys ONNX Runtime (and genai) treat as code to load or files to write/read: refused in
# any JSON a pack lists, whatever the file is called.
HOOK_KEYS = {
    "custom_ops_library", "custom_op_library", "custom_ops_libraries", "register_custom_ops_library",
    "enable_profiling", "profile_file_prefix", "profiling", "optimized_model_filepath",
    "ep_context_file_path", "ep.context_file_path", "log_file", "log_path", "trace_file",
    "session.load_model_format", "session.save_model_format", "shared_lib_path", "backend_path",
    "trt_engine_cache_path", "trt_timing_cache_path", "cache_dir", "dump_path", "library_path",
}
MAX_TEXT = 256
VOCAB_LIKE = 2000
# Vocabularies: tokens as keys, where a word like "profiling" is data, not a setting.
DATA_JSON = {"tokenizer.json", "vocab.json"}


def _where(path: str) -> str:
    return path or "the top level"


def check_genai_config(data: Any, pack_name: str, file_name: str = "genai_config.json") -> None:
    """Refuse any key or value outside :data:`GENAI_SCHEMA`, naming the key."""
    if not isinstance(data, dict):
        raise PackFormatError(f"'{file_name}' in pack '{pack_name}' is not a JSON object.")
    _check(data, GENAI_SCHEMA, "", pack_name, file_name)


def _refuse(path: str, pack_name: str, file_name: str, why: str) -> PackFormatError:
    return PackFormatError(
        f"'{file_name}' in pack '{pack_name}' sets '{_where(path)}', {why}; a pack is data, so Atelier "
        "refuses runtime settings that could load code or write files. Remove the key and re-import."
    )


def _check(value: Any, schema: Any, path: str, pack: str, file_name: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise _refuse(path, pack, file_name, "which must be an object")
        for key, sub in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key not in schema:
                raise _refuse(here, pack, file_name, "which is not a setting Atelier allows")
            _check(sub, schema[key], here, pack, file_name)
    elif schema == _NAMES:
        if not isinstance(value, dict) or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value.values()):
            raise _refuse(path, pack, file_name, "which must map tensor names to short text")
    elif schema == _PROVIDERS:
        _check_providers(value, path, pack, file_name)
    else:
        ok = isinstance(value, schema) and not (isinstance(value, bool) and bool not in schema)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            ok = False
        if isinstance(value, list) and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            ok = False
        if not ok:
            raise _refuse(path, pack, file_name, "to a value of the wrong type")


def _check_providers(value: Any, path: str, pack: str, file_name: str) -> None:
    if not isinstance(value, list):
        raise _refuse(path, pack, file_name, "which must be a list")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise _refuse(f"{path}[{i}]", pack, file_name, "which must be an object")
        for provider, options in entry.items():
            here = f"{path}[{i}].{provider}"
            if provider not in _PROVIDER_NAMES or not isinstance(options, dict):
                raise _refuse(here, pack, file_name, "which is not an execution provider Atelier allows")
            for key, opt in options.items():
                if key not in _PROVIDER_OPTIONS or not isinstance(opt, (str, int, bool)) or len(str(opt)) > 16:
                    raise _refuse(f"{here}.{key}", pack, file_name, "which is not a provider option Atelier allows")


def find_hook_key(data: Any, path: str = "", depth: int = 0) -> str | None:
    """The dotted path of the first code/file hook key anywhere in ``data``, else None."""
    if depth > 64:
        return path or "(nested too deep)"
    if isinstance(data, dict):
        if len(data) > VOCAB_LIKE:  # a vocabulary (tokens as keys), not settings
            return None
        for key, sub in data.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and key.strip().lower() in HOOK_KEYS:
                return here
            found = find_hook_key(sub, here, depth + 1)
            if found:
                return found
    elif isinstance(data, list):
        for i, sub in enumerate(data):
            found = find_hook_key(sub, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def check_hook_keys(data: Any, pack_name: str, file_name: str) -> None:
    key = find_hook_key(data)
    if key:
        raise _refuse(key, pack_name, file_name, "which can load code or write files")
