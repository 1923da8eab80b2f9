"""Loading a text model to export: a .gguf file, a Hugging Face folder, or a hub id.

Local sources switch the Hugging Face libraries to offline mode first, so an export of
a file on disk can never reach the network.
"""

from __future__ import annotations

import json
from pathlib import Path

from desktop.engines.errors import ExportError
from desktop.engines.packs.pack import sha256_file

from ..pipeline import Source
from ..sources import force_offline, readme_card
from ..sources import short_error as _short

# Files a tokenizer folder may hold; copied into the pack when present.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json", "generation_config.json")


def detect_architecture(location: str) -> str:
    """The model_type of a source, read without loading weights."""
    path = Path(location).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ExportError(f"No such GGUF file: {path}")
        from gguf import GGUFReader

        try:
            reader = GGUFReader(str(path))
            field = reader.fields["general.architecture"]
            return bytes(field.parts[field.data[0]]).decode()
        except Exception as exc:  # corrupt header, missing key
            raise ExportError(f"{path} is not a readable GGUF file ({exc}).") from None
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise ExportError(f"{path} has no config.json; it is not a Hugging Face model folder.")
        try:
            return json.loads(cfg.read_text())["model_type"]
        except (json.JSONDecodeError, KeyError):
            raise ExportError(f"{cfg} is not a valid model config (no model_type).") from None
    if path.exists():
        raise ExportError(f"{path} is neither a .gguf file nor a model folder.")
    # A hub id: only usable when a network and the hub cache are available.
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(location).model_type
    except Exception as exc:
        raise ExportError(f"'{location}' is not a local file or folder, and could not be fetched as a hub id ({_short(exc)}).") from None


def load_text_source(location: str, architecture: str) -> Source:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(location).expanduser()
    local = path.exists()
    if local:
        force_offline()
    kwargs: dict = {"dtype": torch.float32}
    hashes: dict[str, str] = {}
    if path.suffix == ".gguf":
        folder, kind = path.parent, "gguf"
        kwargs["gguf_file"] = path.name
        hashes[path.name] = sha256_file(path)
    elif local:
        folder, kind = path, "hf-folder"
        for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            hashes[f.name] = sha256_file(f)
    else:
        folder, kind = location, "hub"
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **({"gguf_file": kwargs["gguf_file"]} if "gguf_file" in kwargs else {}))
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except Exception as exc:
        raise ExportError(f"Could not load '{location}' with transformers: {_short(exc)}") from None
    model.eval()
    if kind == "gguf":
        # The weights are now dequantized fp32 tensors; drop the GGUF quantizer marker so
        # the model saves and exports like any other fp32 model.
        model.config.__dict__.pop("quantization_config", None)
        model.hf_quantizer = None
    card, license_ = _card_and_license(path if local else None, architecture)
    return Source(
        architecture=architecture,
        model=model,
        location=str(location),
        kind=kind,
        sha256=hashes,
        extras={"tokenizer": tokenizer},
        license=license_,
        model_card=card,
    )


def _card_and_license(path: Path | None, architecture: str) -> tuple[str, dict]:
    """Model card and licence from the source's README front matter when it has one."""
    if path is None:
        return "", {}
    card, licence = readme_card(path.parent if path.is_file() else path)
    if not licence and path.suffix == ".gguf":
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields
        if "general.license" in fields:
            f = fields["general.license"]
            licence = bytes(f.parts[f.data[0]]).decode()
        if not card and "general.name" in fields:
            f = fields["general.name"]
            card = f"# {bytes(f.parts[f.data[0]]).decode()}\n\nExported from the GGUF file {path.name} ({architecture})."
    return card, ({"id": licence} if licence else {})
