"""Loading a voice to export: a Hugging Face ``VitsModel`` folder or a Piper training checkpoint.

Only local files are read (speech export never downloads). Each loader returns the
PyTorch model with the facts the manifest records (hashes, licence, model card).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from desktop.engines.errors import ExportError

from ..pipeline import Source


def detect_architecture(location: str) -> str:
    path = Path(location).expanduser()
    if not path.exists():
        raise ExportError(f"'{location}' was not found. Speech export reads a local Hugging Face VitsModel folder or a Piper .ckpt (no downloads).")
    if path.is_file() and path.suffix == ".ckpt":
        return "piper-vits"
    cfg = path / "config.json"
    if path.is_dir() and cfg.is_file():
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type", "unknown")
        except json.JSONDecodeError:
            raise ExportError(f"'{cfg}' is not valid JSON.") from None
        return str(model_type)
    raise ExportError(f"'{location}' is neither a Hugging Face model folder (config.json) nor a Piper checkpoint (.ckpt).")


def load_hf_vits(folder: Path) -> Source:
    from transformers import VitsModel

    from desktop.engines.packs.pack import sha256_file

    vocab_file = folder / "vocab.json"
    if not vocab_file.is_file():
        raise ExportError(f"'{folder}' has no vocab.json; a VitsModel folder needs its tokenizer files.")
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    tok_file = folder / "tokenizer_config.json"
    tok = json.loads(tok_file.read_text(encoding="utf-8")) if tok_file.is_file() else {}
    if tok.get("phonemize"):
        raise ExportError("This VITS model expects phonemizer (espeak) input; only character-vocabulary models are supported.")
    if tok.get("is_uroman"):
        raise ExportError("This VITS model reads romanised text (uroman), which Atelier cannot produce offline; choose a Latin-script MMS voice.")
    model = VitsModel.from_pretrained(str(folder)).eval()
    card = (folder / "README.md").read_text(encoding="utf-8", errors="replace")[:20000] if (folder / "README.md").is_file() else ""
    m = re.search(r"^license:\s*(\S+)", card, re.MULTILINE)
    return Source(
        architecture="vits",
        model=model,
        location=str(folder),
        kind="hf-folder",
        sha256={p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".json", ".safetensors", ".bin")},
        extras={"vocab": vocab, "tokenizer_config": tok},
        license={"id": m.group(1)} if m else {"id": "unknown (see the source's model card)"},
        model_card=card,
    )


def _checkpoint_config(ckpt: Path) -> dict:
    for cand in (ckpt.with_suffix(".json"), Path(str(ckpt) + ".json"), ckpt.parent / "config.json", ckpt.parent.parent / "config.json", ckpt.parent.parent.parent / "config.json"):
        if cand.is_file():
            from desktop.engines.speech.importer import read_voice_json

            return read_voice_json(cand)
    raise ExportError(
        f"No voice config found for '{ckpt.name}': put the config.json that Piper's training wrote (with phoneme_id_map) beside the checkpoint."
    )


def load_piper_checkpoint(ckpt: Path) -> Source:
    import torch

    try:
        from piper.train.vits.models import SynthesizerTrn
    except ImportError:
        raise ExportError("Exporting a Piper checkpoint needs piper-tts's training code (the speech extra): pip install -e '.[speech]'.") from None
    voice = _checkpoint_config(ckpt)
    try:
        # weights_only: a checkpoint is data; refusing pickled code keeps export safe
        state = torch.load(str(ckpt), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise ExportError(f"'{ckpt.name}' is not a readable PyTorch checkpoint, or it holds Python objects that cannot be loaded safely ({str(exc).splitlines()[0][:200]}).") from None
    hp, weights = state.get("hyper_parameters") or {}, state.get("state_dict") or {}
    gen = {k.removeprefix("model_g."): v for k, v in weights.items() if k.startswith("model_g.")}
    if not gen:
        raise ExportError(f"'{ckpt.name}' has no generator weights (model_g.*); is it a Piper training checkpoint?")
    num_speakers = int(hp.get("num_speakers", voice.get("num_speakers", 1)) or 1)
    gin = int(hp.get("gin_channels", 0) or 0) or (512 if num_speakers > 1 else 0)
    try:
        model = SynthesizerTrn(
            n_vocab=int(hp.get("num_symbols", voice.get("num_symbols", 256))),
            spec_channels=int(hp.get("filter_length", 1024)) // 2 + 1,
            segment_size=int(hp.get("segment_size", 8192)) // int(hp.get("hop_length", 256)),
            inter_channels=int(hp.get("inter_channels", 192)),
            hidden_channels=int(hp.get("hidden_channels", 192)),
            filter_channels=int(hp.get("filter_channels", 768)),
            n_heads=int(hp.get("n_heads", 2)),
            n_layers=int(hp.get("n_layers", 6)),
            kernel_size=int(hp.get("kernel_size", 3)),
            p_dropout=float(hp.get("p_dropout", 0.1)),
            resblock=str(hp.get("resblock", "2")),
            resblock_kernel_sizes=tuple(hp.get("resblock_kernel_sizes", (3, 5, 7))),
            resblock_dilation_sizes=tuple(tuple(d) for d in hp.get("resblock_dilation_sizes", ((1, 2), (2, 6), (3, 12)))),
            upsample_rates=tuple(hp.get("upsample_rates", (8, 8, 4))),
            upsample_initial_channel=int(hp.get("upsample_initial_channel", 256)),
            upsample_kernel_sizes=tuple(hp.get("upsample_kernel_sizes", (16, 16, 8))),
            n_speakers=num_speakers,
            gin_channels=gin,
            use_sdp=bool(hp.get("use_sdp", True)),
        )
        model.load_state_dict(gen)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ExportError(f"The checkpoint's weights do not fit a Piper VITS built from its hyper-parameters ({str(exc).splitlines()[0][:200]}).") from None
    model.eval()
    with torch.no_grad():
        model.dec.remove_weight_norm()
    voice.setdefault("num_speakers", num_speakers)
    from desktop.engines.packs.pack import sha256_file

    return Source(
        architecture="piper-vits",
        model=model,
        location=str(ckpt),
        kind="piper-checkpoint",
        sha256={ckpt.name: sha256_file(ckpt)},
        extras={"voice_config": voice},
        license={"id": "unknown (Piper training checkpoint; state the dataset's licence)"},
        model_card="",
    )
