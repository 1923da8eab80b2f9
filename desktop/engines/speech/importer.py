"""Import a Piper voice folder (``NAME.onnx`` + ``NAME.onnx.json``) as a speech pack.

The voice's JSON becomes the manifest's voice config (the engine reads only the
manifest), the licence comes from the folder's MODEL_CARD when it has one, and the graph
is rewritten so its noise is seedable (see speech_graph.py) when ``onnx`` is installed.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from desktop.engines.errors import ImportFormatError
from desktop.engines.packs.importers import importer
from desktop.engines.packs.pack import sha256_file

log = logging.getLogger(__name__)
CARD_NAMES = ("MODEL_CARD", "MODEL_CARD.md", "README.md")


def _voice_graphs(path: Path) -> list[Path]:
    return sorted(p for p in path.glob("*.onnx") if p.is_file())


def is_piper_folder(path: Path) -> bool:
    """Any folder with a .onnx graph and a .onnx.json beside one - or a lone .onnx whose
    JSON is missing, so the person hears what is wrong instead of 'unknown format'."""
    graphs = _voice_graphs(path)
    if not graphs or (path / "manifest.json").exists() or is_hibari_folder(path):
        return False
    if any(Path(str(g) + ".json").is_file() for g in graphs):
        return True
    # a bare .onnx with no other model markers: most likely a voice missing its config
    return not any((path / n).is_file() for n in ("config.json", "genai_config.json", "model_index.json"))


def read_voice_json(path: Path) -> dict:
    if not path.is_file():
        raise ImportFormatError(
            f"The voice config '{path.name}' is missing. A Piper voice needs the .onnx file and its .onnx.json beside it."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFormatError(f"The voice config '{path.name}' is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise ImportFormatError(f"The voice config '{path.name}' is not a JSON object.")
    problems = []
    rate = (data.get("audio") or {}).get("sample_rate") if isinstance(data.get("audio"), dict) else None
    if not isinstance(rate, int) or not 4000 <= rate <= 192_000:
        problems.append("audio.sample_rate is missing or not a plausible rate")
    id_map = data.get("phoneme_id_map")
    if not isinstance(id_map, dict) or not id_map or not all(isinstance(v, list) and all(isinstance(i, int) for i in v) for v in id_map.values()):
        problems.append("phoneme_id_map is missing or malformed")
    if data.get("phoneme_type", "espeak") not in ("espeak", "text"):
        problems.append(f"phoneme_type '{data.get('phoneme_type')}' is not supported (espeak, text)")
    problems += _out_of_bounds(data, path.name)
    if problems:
        raise ImportFormatError(f"The voice config '{path.name}' is unusable: " + "; ".join(problems) + ".")
    return data


def _out_of_bounds(data: dict, name: str) -> list[str]:
    """Numbers a hostile or broken voice JSON can inflate (300 million speakers...),
    checked at import so the pack never reaches the library."""
    from desktop.engines.config_limits import BOUNDS, bounded_float, bounded_int
    from desktop.engines.errors import PackFormatError

    problems = []
    checks = [("num_speakers", data.get("num_speakers", 1) or 1, bounded_int), ("hop_length", data.get("hop_length", 256), bounded_int)]
    inference = data.get("inference") if isinstance(data.get("inference"), dict) else {}
    checks += [(k, inference[k], bounded_float) for k in ("noise_scale", "length_scale", "noise_w") if k in inference]
    for key, value, check in checks:
        try:
            check(value, key, name)
        except PackFormatError:
            problems.append(f"{key} = {str(value)[:40]} is out of range ({BOUNDS[key][0]:g}-{BOUNDS[key][1]:g})")
    for key in ("phoneme_id_map", "speaker_id_map"):
        entries = data.get(key)
        if isinstance(entries, (dict, list)) and len(entries) > BOUNDS[key][1]:
            problems.append(f"{key} has {len(entries):,} entries (at most {BOUNDS[key][1]:,})")
    return problems


def voice_config(data: dict) -> dict:
    """Piper's .onnx.json -> the manifest's voice config."""
    kind = data.get("phoneme_type", "espeak")
    phonemizer = {"kind": kind}
    if kind == "espeak":
        phonemizer["voice"] = (data.get("espeak") or {}).get("voice", "en-us")
    language = data.get("language") or {}
    inference = data.get("inference") or {}
    return {
        "sample_rate": data["audio"]["sample_rate"],
        "quality": data["audio"].get("quality", ""),
        "phonemizer": phonemizer,
        "phoneme_id_map": data["phoneme_id_map"],
        "id_style": "piper",
        "num_speakers": int(data.get("num_speakers", 1) or 1),
        "speaker_id_map": data.get("speaker_id_map") or {},
        "inference": {k: float(inference[k]) for k in ("noise_scale", "length_scale", "noise_w") if k in inference},
        "language": language.get("code", "") if isinstance(language, dict) else str(language),
        "hop_length": int(data.get("hop_length", 256)),
        "dataset": data.get("dataset", ""),
    }


def licence_from_card(card: str) -> dict:
    """The first 'License: X' line of a Piper model card (the dataset's licence)."""
    m = re.search(r"^\W*licen[cs]e\W*[:=]\s*(.+)$", card, re.IGNORECASE | re.MULTILINE)
    if not m:
        return {"id": "unknown (imported Piper voice; no licence line in its model card)"}
    return {"id": m.group(1).strip(), "note": "from the voice's MODEL_CARD (licence of its training data)"}


@importer("Piper voice folder (NAME.onnx + NAME.onnx.json)", is_piper_folder)
def import_piper(src: Path, dest: Path, name: str | None) -> dict:
    graphs = _voice_graphs(dest)
    with_json = [g for g in graphs if Path(str(g) + ".json").is_file()]
    if len(with_json) > 1:
        raise ImportFormatError(f"'{src.name}' holds {len(with_json)} voices; import one folder per voice.")
    graph = with_json[0] if with_json else graphs[0]
    data = read_voice_json(Path(str(graph) + ".json"))
    original_sha = sha256_file(graph)
    seeded = 0
    try:
        from desktop.engines.speech.graph import seed_noise_inputs

        seeded = seed_noise_inputs(graph, graph)
    except ImportError:
        log.warning("onnx is not installed; %s keeps its internal noise (seeds will not repeat)", graph.name)
    card_file = next((dest / n for n in CARD_NAMES if (dest / n).is_file()), None)
    card = card_file.read_text(encoding="utf-8", errors="replace")[:20000] if card_file else ""
    config = voice_config(data)
    config["seedable_noise"] = bool(seeded)
    roles = {graph.name: "model", graph.name + ".json": "voice-config"}
    if card_file:
        roles[card_file.name] = "model-card"
    return {
        "name": name or graph.name.removesuffix(".onnx"),
        "modality": "speech",
        "architecture": "vits",
        "runtime": "onnxruntime",
        "precision": "fp32",
        "io": {"model": {"inputs": ["input", "input_lengths", "scales"] + (["sid"] if config["num_speakers"] > 1 else []) + [f"noise_{i}" for i in range(seeded)], "outputs": ["output"]}},
        "config": config,
        "source": {
            "location": str(src),
            "kind": "piper-voice",
            "sha256": {graph.name: original_sha},
            "piper_version": data.get("piper_version", ""),
            "modified": "RandomNormalLike nodes replaced by seeded noise inputs" if seeded else "",
        },
        "license": licence_from_card(card),
        "model_card": card,
        "_roles": roles,
    }


# -- hibari ------------------------------------------------------------------------------

HIBARI_FILES = ("hibari.onnx", "vocab.json")


def is_hibari_folder(path: Path) -> bool:
    return all((path / f).is_file() for f in HIBARI_FILES)


@importer("hibari voice folder (hibari.onnx + vocab.json, e.g. the hibari-tts package's assets)", is_hibari_folder)
def import_hibari(src: Path, dest: Path, name: str | None) -> dict:
    try:
        vocab = json.loads((dest / "vocab.json").read_text(encoding="utf-8"))
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise ValueError("not a symbol -> id map")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFormatError(f"The hibari vocab.json is unusable ({exc}).") from None
    voices = {}
    if (dest / "voices.json").is_file():
        try:
            voices = json.loads((dest / "voices.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            voices = {}
    heart = voices.get("heart", {}) if isinstance(voices, dict) else {}
    card_file = next((dest / n for n in ("NOTICE", "README.md", "MODEL_CARD") if (dest / n).is_file()), None)
    return {
        "name": name or "hibari-heart",
        "modality": "speech",
        "architecture": "hibari",
        "runtime": "onnxruntime",
        "precision": "int8",
        "io": {"model": {"inputs": ["ids", "speed"], "outputs": ["lh", "theta", "ln", "lr", "phi", "f0"]}},
        "config": {
            "sample_rate": 24000,
            "phonemizer": {"kind": "hibari", "british": bool(heart.get("british", False))},
            "language": (heart.get("language") or "en-US").replace("-", "_"),
            "num_speakers": 1,
            "voice": "heart",
            "teacher": heart.get("kokoro", "af_heart"),
            "seedable_noise": True,
        },
        "source": {"location": str(src), "kind": "hibari-tts", "sha256": {"hibari.onnx": sha256_file(dest / "hibari.onnx")}},
        "license": {"id": "Apache-2.0", "note": "hibari-tts; distilled from Kokoro-82M (Apache-2.0)"},
        "model_card": card_file.read_text(encoding="utf-8", errors="replace")[:20000] if card_file else "",
        "_roles": {"hibari.onnx": "model", "vocab.json": "vocab"},
    }
