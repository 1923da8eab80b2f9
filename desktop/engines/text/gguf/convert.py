"""GGUF file -> Atelier text pack, directly: no torch, no requantization.

``convert_gguf(src, dest)`` reads the file (memory-mapped, header checked first), writes
``model.onnx`` + ``model.onnx.data`` holding the file's own quant blocks, the tokenizer and
chat template rebuilt from its metadata, ``genai_config.json`` for onnxruntime-genai, and
returns the manifest fields. The importer registry calls it (``models import x.gguf``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from desktop.engines.packs.pack import sha256_file
from desktop.engines.text.gguf.background import PROGRESS
from desktop.engines.text.gguf.emit import GraphWriter
from desktop.engines.text.gguf.families import ARCHITECTURES, family, refuse_unsupported  # noqa: F401 - ARCHITECTURES: the list callers show
from desktop.engines.text.gguf.llama_graph import LlamaGraph
from desktop.engines.text.gguf.longrope import has_longrope, longrope_settings
from desktop.engines.text.gguf.quant import DEQUANTIZED, PRECISION
from desktop.engines.text.gguf.reader import GGUFFile, GGUFFormatError, open_gguf
from desktop.engines.text.gguf.tokenizer import build_tokenizer

# llama.cpp's general.sampling.* keys (the model maker's recommendation) -> ours
# genai's name for the text-only model where its plain name means the multimodal package
GENAI_TYPES = {"gemma3": "gemma3_text", "mistral3": "mistral"}
SAMPLING_KEYS = {"temp": "temperature", "top_k": "top_k", "top_p": "top_p", "min_p": "min_p", "penalty_repeat": "repetition_penalty"}


def hyperparameters(gf: GGUFFile) -> dict:
    refuse_unsupported(gf)
    arch = gf.architecture

    def num(key: str, default=None, kind=int):
        value = gf.get(f"{arch}.{key}", default)
        if value is None:
            raise GGUFFormatError(f"'{gf.path.name}' lacks '{arch}.{key}' in its metadata.")
        try:
            value = kind(value)
        except (TypeError, ValueError):
            raise GGUFFormatError(f"'{gf.path.name}': '{arch}.{key}' is not a number.") from None
        if kind is int and not 0 < value < 1 << 24:
            raise GGUFFormatError(f"'{gf.path.name}': '{arch}.{key}' = {value} is implausible.")
        return value

    hidden, heads = num("embedding_length"), num("attention.head_count")
    head_dim = num("attention.key_length", hidden // heads)
    embed = gf.tensors.get("token_embd.weight")
    if embed is None:
        raise GGUFFormatError(f"'{gf.path.name}' has no token embedding; it is not a complete model.")
    scaling = gf.get(f"{arch}.rope.scaling.type")
    hp = {
        "hidden": hidden,
        "layers": num("block_count"),
        "heads": heads,
        "kv_heads": num("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "ffn": num("feed_forward_length"),
        "vocab": embed.rows,
        "context": min(num("context_length", 2048), 131072),
        "eps": num("attention.layer_norm_rms_epsilon", 1e-5, float),
        "rope_base": num("rope.freq_base", 10000.0, float),
        "rope_dim": num("rope.dimension_count", head_dim),
        "rope_linear_factor": num("rope.scaling.factor", 1.0, float) if scaling == "linear" else 1.0,
    }
    if hp["heads"] % hp["kv_heads"] or head_dim % 2 or hp["rope_dim"] > head_dim:
        raise GGUFFormatError(f"'{gf.path.name}' has an inconsistent attention shape (heads {heads}, kv heads {hp['kv_heads']}, head size {head_dim}).")
    hp["family"] = family(gf, hp["layers"], head_dim)
    if has_longrope(gf):
        hp["longrope"] = longrope_settings(gf, hp["context"], hp["rope_dim"])
    return hp


def convert_gguf(src: Path, dest: Path, exact_activations: bool = False, **graph_options) -> dict:
    """Write the pack files into ``dest`` (an empty folder) and return manifest fields."""
    t0 = time.perf_counter()
    src, dest = Path(src), Path(dest)
    gf = open_gguf(src)
    hp = hyperparameters(gf)
    tokenizer, tok_config = build_tokenizer(gf)  # before the graph: a bad vocabulary fails fast
    writer = GraphWriter(dest)
    try:
        graph = LlamaGraph(gf, writer, hp, exact_activations, **graph_options)
        graph.progress = PROGRESS.get()
        graph.build()
        writer.save()
    finally:
        writer.abort()
    _write_text(dest / "tokenizer.json", tokenizer.to_str())
    _write_json(dest / "tokenizer_config.json", tok_config)
    chat = "chat_template" in tok_config
    if chat:
        _write_text(dest / "chat_template.jinja", tok_config["chat_template"])
    eos = _eos_ids(gf, tokenizer)
    _write_json(dest / "genai_config.json", _genai_config(gf, hp, eos))
    sampling = recommended_sampling(gf)
    if sampling:
        _write_json(dest / "generation_config.json", {"do_sample": True, **{k: v for k, v in sampling.items()}})
    mix = graph.counts
    notice = widened_notice(src.name, mix)
    precisions = {PRECISION[_kind(k)] for k in mix if _kind(k) is not None and k not in ("F32",)} or {"fp32"}
    roles = {"model.onnx": "decoder", "model.onnx.data": "weights", "tokenizer.json": "tokenizer", "tokenizer_config.json": "tokenizer-config", "genai_config.json": "runtime-config"}
    if chat:
        roles["chat_template.jinja"] = "chat-template"
    return {
        "name": src.stem,
        "architecture": gf.architecture,
        "runtime": "onnxruntime-genai",
        "modality": "text",
        "precision": precisions.pop() if len(precisions) == 1 else "mixed",
        "context_length": hp["context"],
        "io": {"decoder": {"inputs": ["input_ids", "attention_mask", "past_key_values.%d.key", "past_key_values.%d.value"], "outputs": ["logits", "present.%d.key", "present.%d.value"]}},
        "config": {
            "num_layers": hp["layers"],
            "num_attention_heads": hp["heads"],
            "num_key_value_heads": hp["kv_heads"],
            "head_dim": hp["head_dim"],
            "vocab_size": hp["vocab"],
            "eos_token_id": eos,
            "chat": chat,  # False: a completion model, the file has no chat template
            "quantization": {
                "source_types": mix, "embedding": graph.embedding_type, "requantized": notice is not None, **({"notice": notice} if notice else {}),
                "activations": "float" if exact_activations else f"float for {', '.join(sorted(graph.float_roles)) or 'none'}, int8 per block of 32 elsewhere",
            },
            **({"sampling": sampling} if sampling else {}),
        },
        "source": {
            "kind": "gguf",
            "file": src.name,
            "location": str(src),
            "sha256": {src.name: sha256_file(src)},
            "architecture": gf.architecture,
            "model_name": str(gf.get("general.name", "")),
            "file_type": gf.get("general.file_type"),
            "conversion_seconds": round(time.perf_counter() - t0, 2),
        },
        "license": _licence(gf),
        "model_card": _model_card(gf, src, mix, chat, notice),
        "exporter": "atelier gguf importer",
        "_roles": roles,
    }


def widened_notice(file_name: str, mix: dict[str, int]) -> str | None:
    """One line for the person importing: which of the file's types were not kept as they are."""
    widened = sorted(k for k in mix if _kind(k) in DEQUANTIZED)
    if not widened:
        return None
    count = sum(mix[k] for k in widened)
    return (
        f"'{file_name}': {count} of {sum(mix.values())} tensors are {', '.join(widened)}, which ONNX Runtime has no kernel for; "
        "they were unpacked and stored at 8 bits (same answers within rounding, a larger pack)."
    )


def recommended_sampling(gf: GGUFFile) -> dict:
    out = {}
    for key, ours in SAMPLING_KEYS.items():
        value = gf.get(f"general.sampling.{key}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[ours] = int(value) if ours == "top_k" else float(value)
    return out


def _kind(name: str):
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType.__members__.get(name)


def _eos_ids(gf: GGUFFile, tokenizer) -> list[int] | int:
    ids = [i for i in (gf.get("tokenizer.ggml.eos_token_id"), gf.get("tokenizer.ggml.eot_token_id")) if isinstance(i, int)]
    ids = list(dict.fromkeys(ids)) or [0]
    return ids[0] if len(ids) == 1 else ids


def _genai_config(gf: GGUFFile, hp: dict, eos) -> dict:
    pad = gf.get("tokenizer.ggml.padding_token_id")
    return {
        "model": {
            "bos_token_id": int(gf.get("tokenizer.ggml.bos_token_id", 1)),
            "context_length": hp["context"],
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": hp["head_dim"],
                "hidden_size": hp["hidden"],
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value"},
                "num_attention_heads": hp["heads"],
                "num_hidden_layers": hp["layers"],
                "num_key_value_heads": hp["kv_heads"],
            },
            "eos_token_id": eos,
            "pad_token_id": int(pad) if isinstance(pad, int) else (eos if isinstance(eos, int) else eos[0]),
            "type": GENAI_TYPES.get(gf.architecture, gf.architecture),
            "vocab_size": hp["vocab"],
        },
        "search": {"do_sample": False, "max_length": hp["context"], "num_beams": 1, "past_present_share_buffer": True, "repetition_penalty": 1.0, "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    }


def _licence(gf: GGUFFile) -> dict:
    lic = {"id": str(gf.get("general.license") or "unknown (not stated in the GGUF; see the model's card)")}
    for key, ours in (("general.license.name", "name"), ("general.license.link", "url"), ("general.author", "author"), ("general.organization", "organization"), ("general.url", "source_url")):
        if gf.get(key):
            lic[ours] = str(gf.get(key))
    return lic


def _model_card(gf: GGUFFile, src: Path, mix: dict, chat: bool, notice: str | None) -> str:
    how = "; some types stored at 8 bits" if notice else " without requantizing"
    lines = [f"# {gf.get('general.name') or src.stem}", "", f"Imported from `{src.name}` (GGUF, {gf.architecture}){how}.", ""]
    lines.append("Tensor types: " + ", ".join(f"{k} x{v}" for k, v in sorted(mix.items())) + ".")
    if notice:  # its own paragraph: the Library renders the card as Markdown
        lines += ["", f"**Note:** {notice}", ""]
    lines.append("Chat model (the file's own chat template)." if chat else "Completion model: the file has no chat template.")
    if gf.get("general.description"):
        lines += ["", str(gf.get("general.description"))[:4000]]
    return "\n".join(lines) + "\n"




def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "x", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=2, ensure_ascii=False))
