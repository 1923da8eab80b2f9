"""Speech export configs: PyTorch VITS -> a voice pack the speech engine plays.

* ``HfVitsExport`` ("vits"): a Hugging Face ``VitsModel`` folder (MMS-TTS and friends).
  Characters of its tokenizer vocabulary are the "phonemes" (phonemizer kind ``chars``).
* ``PiperCheckpointExport`` ("piper-vits"): a Piper training checkpoint (.ckpt) plus the
  voice config its training wrote; the model code comes from ``piper.train.vits`` in the
  GPL-3.0 ``piper-tts`` package (the optional ``speech`` extra), loaded without Lightning.

Both produce Piper's graph interface with seedable noise inputs, validated against
PyTorch with the noise at zero.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from desktop.engines.errors import ExportError

from . import quantize
from .base import ExportConfig, Source
from .registry import lookup, register
from .validate_speech import VALIDATION_SENTENCES, validate_voice

GRAPH = "model.onnx"
# fp32 must match PyTorch to float rounding; quantized graphs are judged on the log-mel
# distance (they may round a duration differently, which shifts samples).
FLOORS = {
    "fp32": {"max_abs_diff": 1e-3, "log_mel_l1": 0.05},
    "fp16": {"max_abs_diff": None, "log_mel_l1": 1.0},
    "int8": {"max_abs_diff": None, "log_mel_l1": 1.5},
}


class VoiceExport(ExportConfig):
    precisions = ("fp32", "fp16", "int8")

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> None:
        quantize.copy_side_files(fp32_dir, out_dir)
        if precision == "fp16":
            quantize.fp16(fp32_dir / GRAPH, out_dir / GRAPH)
        elif precision == "int8":
            quantize.dynamic_int8(fp32_dir / GRAPH, out_dir / GRAPH)

    def passes_floor(self, report: dict[str, Any], precision: str) -> tuple[bool, str]:
        floor = FLOORS[precision]
        problems = []
        if floor["max_abs_diff"] is not None and (report["max_abs_diff"] > floor["max_abs_diff"] or not report["all_same_length"]):
            problems.append(f"waveform max |Δ| {report['max_abs_diff']:.2e} > {floor['max_abs_diff']} or lengths differ")
        if report["log_mel_l1"] > floor["log_mel_l1"]:
            problems.append(f"log-mel L1 {report['log_mel_l1']:.3f} > {floor['log_mel_l1']}")
        return (not problems), "; ".join(problems) or f"meets the {precision} floor {floor}"

    def roles(self, pack_dir: Path) -> dict[str, str]:
        return {GRAPH: "model"}

    def validate(self, pack_dir: Path) -> dict[str, Any]:
        return validate_voice(pack_dir / GRAPH, self.reference, self.validation_ids(), self.sample_rate)

    def io(self) -> dict[str, Any]:
        inputs = ["input", "input_lengths", "scales"] + (["sid"] if self.num_speakers > 1 else []) + ["noise_0", "noise_1"]
        return {"model": {"inputs": inputs, "outputs": ["output", "durations"] if self.has_durations else ["output"]}}


@register("speech", "vits")
class HfVitsExport(VoiceExport):
    has_durations = True

    def __init__(self, source: Source):
        super().__init__(source)
        cfg = source.model.config
        self.sample_rate = int(cfg.sampling_rate)
        self.num_speakers = int(cfg.num_speakers)
        tok = source.extras["tokenizer_config"]
        self.vocab: dict[str, int] = source.extras["vocab"]
        self.lowercase = bool(tok.get("normalize", True))
        self.style = "interspersed" if tok.get("add_blank", True) else "plain"

    def convert(self, workdir: Path) -> Path:
        from .vits_graph import export_vits

        out = workdir / "fp32"
        out.mkdir()
        export_vits(self.source.model, out / GRAPH)
        return out

    def reference(self, ids, sid):
        import torch

        m = self.source.model
        m.noise_scale, m.noise_scale_duration = 0.0, 0.0
        with torch.inference_mode():
            out = m(input_ids=torch.tensor([list(ids)]), speaker_id=sid if self.num_speakers > 1 else None)
        return out.waveform.numpy()

    def validation_ids(self) -> list[list[int]]:
        from desktop.engines.speech.phonemes import CharPhonemizer, PhonemeIds

        id_map = {c: [i] for c, i in self.vocab.items()}
        chars, to_ids = CharPhonemizer(id_map, self.lowercase), PhonemeIds(id_map, self.style, 0)
        seqs = [to_ids([c for c in chars.phonemize(s) if c in id_map]) for s in VALIDATION_SENTENCES]
        return [s for s in seqs if len(s) > 1] or [[0, 1, 0]]

    def manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        cfg = self.source.model.config
        hop = 1
        for r in cfg.upsample_rates:
            hop *= r
        tok = self.source.extras["tokenizer_config"]
        return {
            "architecture": "vits",
            "runtime": self.runtime,
            "io": self.io(),
            "config": {
                "sample_rate": self.sample_rate,
                "phonemizer": {"kind": "chars", "lowercase": self.lowercase},
                "phoneme_id_map": {c: [i] for c, i in self.vocab.items()},
                "id_style": self.style,
                "blank_id": 0,
                "num_speakers": self.num_speakers,
                "speaker_id_map": {},
                "inference": {"noise_scale": float(cfg.noise_scale), "length_scale": round(1.0 / float(cfg.speaking_rate or 1.0), 6), "noise_w": float(cfg.noise_scale_duration)},
                "language": str(tok.get("language") or ""),
                "hop_length": hop,
                "seedable_noise": True,
                "parameters": int(sum(p.numel() for p in self.source.model.parameters())),
            },
        }


@register("speech", "piper-vits")
class PiperCheckpointExport(VoiceExport):
    has_durations = False

    def __init__(self, source: Source):
        super().__init__(source)
        self.voice = source.extras["voice_config"]
        self.sample_rate = int(self.voice["audio"]["sample_rate"])
        self.num_speakers = int(self.voice.get("num_speakers", 1) or 1)

    def convert(self, workdir: Path) -> Path:
        import torch

        from desktop.engines.speech.graph import seed_noise_inputs

        model = self.source.model

        class Infer(torch.nn.Module):
            def __init__(self, multi: bool):
                super().__init__()
                self.g, self.multi = model, multi

            def forward(self, input, input_lengths, scales, sid=None):
                return self.g.infer(input, input_lengths, sid=sid if self.multi else None, noise_scale=scales[0], length_scale=scales[1], noise_scale_w=scales[2])[0]

        out = workdir / "fp32"
        out.mkdir()
        multi = self.num_speakers > 1
        ids = torch.randint(0, model.n_vocab, (1, 20))
        args = (ids, torch.tensor([20]), torch.tensor([0.667, 1.0, 0.8])) + ((torch.tensor([0]),) if multi else ())
        raw = workdir / "raw.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                Infer(multi).eval(), args, str(raw), opset_version=15, dynamo=False,
                input_names=["input", "input_lengths", "scales"] + (["sid"] if multi else []), output_names=["output"],
                dynamic_axes={"input": {1: "phonemes"}, "output": {2: "time"}},
            )
        if seed_noise_inputs(raw, out / GRAPH) == 0:
            raise ExportError("The exported Piper graph has no noise nodes to make seedable; the checkpoint's model is not a VITS generator.")
        (out / "voice.onnx.json").write_text(json.dumps(self.voice, ensure_ascii=False, indent=1), encoding="utf-8")
        return out

    def reference(self, ids, sid):
        import torch

        with torch.inference_mode():
            x = torch.tensor([list(ids)])
            s = torch.tensor([sid]) if self.num_speakers > 1 else None
            return self.source.model.infer(x, torch.tensor([len(ids)]), sid=s, noise_scale=0.0, length_scale=1.0, noise_scale_w=0.0)[0].numpy()

    def validation_ids(self) -> list[list[int]]:
        from desktop.engines.speech.phonemes import BOS, EOS, PAD, PhonemeIds

        id_map = self.voice["phoneme_id_map"]
        symbols = sorted(k for k in id_map if k not in (BOS, EOS, PAD))
        rng = random.Random(1234)  # fixed: the same report for the same checkpoint
        return [PhonemeIds(id_map)([rng.choice(symbols) for _ in range(n)]) for n in (12, 40, 90)]

    def roles(self, pack_dir: Path) -> dict[str, str]:
        return {GRAPH: "model", "voice.onnx.json": "voice-config"}

    def manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        from desktop.engines.speech.importer import voice_config

        config = voice_config(self.voice)
        config["seedable_noise"] = True
        config["parameters"] = int(sum(p.numel() for p in self.source.model.parameters()))
        return {"architecture": "vits", "runtime": self.runtime, "io": self.io(), "config": config}


# -- sources --------------------------------------------------------------------------


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


def source_for(location: str, **_: Any) -> Source:
    arch = detect_architecture(location)
    lookup("speech", arch)  # unsupported architectures fail here with the supported list
    return _load_piper_checkpoint(Path(location)) if arch == "piper-vits" else _load_hf_vits(Path(location))


def _load_hf_vits(folder: Path) -> Source:
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


def _load_piper_checkpoint(ckpt: Path) -> Source:
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
