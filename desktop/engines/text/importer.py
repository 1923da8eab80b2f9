"""Import foreign text-model layouts as packs: onnxruntime-genai folders, optimum /
onnx-community decoder folders, and single GGUF files (converted keeping their
quantization). Each registers with the generic importer in ``packs/importers.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from desktop.engines.errors import ImportFormatError
from desktop.engines.packs.importers import guess_precision, importer, read_model_card


def _is_genai_folder(path: Path) -> bool:
    return (path / "genai_config.json").is_file() and (path / "tokenizer.json").is_file()


@importer("onnxruntime-genai model folder (genai_config.json + model.onnx + tokenizer.json)", _is_genai_folder)
def _import_genai(src: Path, dest: Path, name: str | None) -> dict:
    cfg = json.loads((dest / "genai_config.json").read_text())
    model = cfg.get("model", {})
    decoder = model.get("decoder", {})
    graph = decoder.get("filename", "model.onnx")
    if not (dest / graph).is_file():
        raise ImportFormatError(f"genai_config.json names '{graph}', which is not in the folder.")
    return {
        "architecture": model.get("type", "unknown"),
        "runtime": "onnxruntime-genai",
        "modality": "text",
        "precision": guess_precision(dest),
        "context_length": model.get("context_length"),
        "io": {"decoder": {"inputs": list(decoder.get("inputs", {}).values()), "outputs": list(decoder.get("outputs", {}).values())}},
        "config": {
            "num_layers": decoder.get("num_hidden_layers"),
            "num_key_value_heads": decoder.get("num_key_value_heads"),
            "head_dim": decoder.get("head_size"),
            "eos_token_id": model.get("eos_token_id"),
        },
        "source": {"location": str(src), "kind": "onnxruntime-genai folder"},
        "license": {"id": "unknown (imported; see the source's model card)"},
        "model_card": read_model_card(src),
        "_roles": {graph: "decoder", "tokenizer.json": "tokenizer"},
    }


def _is_optimum_decoder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "tokenizer.json").is_file() and bool(_optimum_graph(path))


def _optimum_graph(path: Path) -> str:
    for cand in ("model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx", "onnx/model.onnx", "onnx/model_quantized.onnx"):
        if (path / cand).is_file():
            return cand
    return ""


@importer("optimum / onnx-community decoder folder (config.json + model.onnx with past_key_values)", _is_optimum_decoder)
def _import_optimum(src: Path, dest: Path, name: str | None) -> dict:
    import onnx

    graph = _optimum_graph(dest)
    model = onnx.load(str(dest / graph), load_external_data=False)
    inputs = [i.name for i in model.graph.input]
    if not any(n.startswith("past_key_values.") for n in inputs):
        raise ImportFormatError(f"'{graph}' has no past_key_values inputs; only KV-cache decoder exports can be imported.")
    cfg = json.loads((dest / "config.json").read_text())
    heads = cfg.get("num_attention_heads") or cfg.get("n_head")
    return {
        "architecture": cfg.get("model_type", "unknown"),
        "runtime": "onnxruntime",
        "modality": "text",
        "precision": guess_precision(dest),
        "context_length": cfg.get("max_position_embeddings") or cfg.get("n_positions"),
        "io": {"decoder": {"inputs": inputs, "outputs": [o.name for o in model.graph.output]}},
        "config": {
            "num_layers": cfg.get("num_hidden_layers") or cfg.get("n_layer"),
            "num_key_value_heads": cfg.get("num_key_value_heads") or heads,
            "head_dim": cfg.get("head_dim") or ((cfg.get("hidden_size") or cfg.get("n_embd") or 0) // (heads or 1)),
            "eos_token_id": cfg.get("eos_token_id"),
        },
        "source": {"location": str(src), "kind": "optimum folder"},
        "license": {"id": "unknown (imported; see the source's model card)"},
        "model_card": read_model_card(src),
        "_roles": {graph: "decoder", "tokenizer.json": "tokenizer"},
    }


def _is_gguf_file(path: Path) -> bool:
    # by name only: a damaged .gguf should hear what is wrong with it, not "unknown format"
    return path.is_file() and path.suffix.lower() == ".gguf"


@importer("GGUF model file (.gguf: llama-family, converted keeping its quantization)", _is_gguf_file)
def _import_gguf(src: Path, dest: Path, name: str | None) -> dict:
    from desktop.engines.text.gguf.convert import convert_gguf

    fields = convert_gguf(src, dest)
    fields["name"] = name or dest.name
    return fields
