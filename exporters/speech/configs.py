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
from pathlib import Path
from typing import Any

from desktop.engines.errors import ExportError

from .. import quantize
from ..pipeline import ExportConfig, Source
from ..registry import register
from .source import load_hf_vits, load_piper_checkpoint
from .validate import VALIDATION_SENTENCES, validate_voice

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

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> dict[str, Any]:
        quantize.copy_side_files(fp32_dir, out_dir)
        if precision == "fp16":
            quantize.fp16(fp32_dir / GRAPH, out_dir / GRAPH)
        elif precision == "int8":
            quantize.dynamic_int8(fp32_dir / GRAPH, out_dir / GRAPH)
        return {}

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

    def validate(self, pack_dir: Path, reference: Any) -> dict[str, Any]:
        return validate_voice(pack_dir / GRAPH, self.torch_waveform, self.validation_ids(), self.sample_rate)

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

    @classmethod
    def load_source(cls, location: str, architecture: str, **options: Any) -> Source:
        return load_hf_vits(Path(location))

    def convert(self, workdir: Path) -> Path:
        from .graph import export_vits

        out = workdir / "fp32"
        out.mkdir()
        export_vits(self.source.model, out / GRAPH)
        return out

    def torch_waveform(self, ids, sid):
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

    def manifest(self, pack_dir: Path, precision: str, facts: dict[str, Any]) -> dict[str, Any]:
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

    @classmethod
    def load_source(cls, location: str, architecture: str, **options: Any) -> Source:
        return load_piper_checkpoint(Path(location))

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

    def torch_waveform(self, ids, sid):
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

    def manifest(self, pack_dir: Path, precision: str, facts: dict[str, Any]) -> dict[str, Any]:
        from desktop.engines.speech.importer import voice_config

        config = voice_config(self.voice)
        config["seedable_noise"] = True
        config["parameters"] = int(sum(p.numel() for p in self.source.model.parameters()))
        return {"architecture": "vits", "runtime": self.runtime, "io": self.io(), "config": config}
