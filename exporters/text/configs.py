"""Text decoder export configs.

Two families, each a small registered class:
* ``GenaiDecoderExport`` - llama-like decoders go through onnxruntime-genai's model
  builder, which emits a fused graph (GroupQueryAttention, SkipSimplifiedLayerNorm,
  rotary embeddings) that the genai runtime drives with an in-place KV buffer. This is the
  fast path (see bench/text.py).
* ``TorchDecoderExport`` - other decoders (GPT-2...) through torch.onnx with an explicit
  past/present KV interface, run by the plain onnxruntime backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from desktop.engines.errors import ExportError

from .. import quantize
from ..pipeline import ExportConfig, Source
from ..registry import register
from ..sources import offline_env
from .source import TOKENIZER_FILES, load_text_source
from .validate import TextReference, validate_text_pack

# Quality floors for quantized packs, measured against PyTorch fp32 (see README):
# teacher-forced greedy agreement and perplexity ratio on held-out text. The int4 floor
# is set where SmolLM2 separates faithful schemes (corrected int4: 0.966 / 1.002) from
# plain integer-zero-point RTN, which rambles (0.70 / 1.29).
FLOORS = {
    "fp32": {"agreement": 0.98, "ppl_ratio": 1.01},
    "fp16": {"agreement": 0.95, "ppl_ratio": 1.02},
    "int8": {"agreement": 0.90, "ppl_ratio": 1.05},
    "int4": {"agreement": 0.90, "ppl_ratio": 1.05},
}


class TextDecoderExport(ExportConfig):
    graph_name = "model.onnx"
    engine_checks = True  # the free-running check generates with the pack's real engine

    def __init__(self, source: Source):
        super().__init__(source)
        cfg = source.model.config
        self.layers = cfg.num_hidden_layers
        self.heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.context = int(getattr(cfg, "max_position_embeddings", 0) or 2048)
        self.new_tokens = 64

    @classmethod
    def load_source(cls, location: str, architecture: str, **options: Any) -> Source:
        return load_text_source(location, architecture)

    # -- validation -----------------------------------------------------------------
    def reference(self, fp32_dir: Path) -> TextReference:
        return TextReference(self.source.model, fp32_dir, new_tokens=self.new_tokens)

    def validate(self, pack_dir: Path, reference: TextReference) -> dict[str, Any]:
        return validate_text_pack(reference, pack_dir, self.graph_name, self.kv_heads, self.head_dim)

    def passes_floor(self, report: dict[str, Any], precision: str) -> tuple[bool, str]:
        floor = FLOORS[precision]
        problems = []
        if report["teacher_forced_agreement"] < floor["agreement"]:
            problems.append(f"greedy agreement {report['teacher_forced_agreement']:.3f} < {floor['agreement']}")
        if report["perplexity_ratio"] > floor["ppl_ratio"]:
            problems.append(f"perplexity ratio {report['perplexity_ratio']:.3f} > {floor['ppl_ratio']}")
        return (not problems), "; ".join(problems) or f"meets the {precision} floor {floor}"

    # -- manifest ---------------------------------------------------------------------
    def manifest(self, pack_dir: Path, precision: str, facts: dict[str, Any]) -> dict[str, Any]:
        weights = sum(f.stat().st_size for f in pack_dir.iterdir() if f.is_file())
        kv_bytes = 2 * self.layers * self.kv_heads * self.head_dim * 4 * 4096
        gen = self.source.model.generation_config
        return {
            "architecture": self.source.architecture,
            "runtime": self.runtime,
            "context_length": self.context,
            "io": self.io_names(),
            "config": {
                "num_layers": self.layers,
                "num_attention_heads": self.heads,
                "num_key_value_heads": self.kv_heads,
                "head_dim": self.head_dim,
                "vocab_size": self.source.model.config.vocab_size,
                "eos_token_id": gen.eos_token_id,
                "estimated_ram_bytes": int(weights * 1.15 + kv_bytes + 64 * 2**20),
                **({"quantization": facts["quantization"]} if facts.get("quantization") else {}),
            },
        }

    def io_names(self) -> dict[str, Any]:
        return {
            "decoder": {
                "inputs": ["input_ids", "attention_mask", "past_key_values.%d.key", "past_key_values.%d.value"],
                "outputs": ["logits", "present.%d.key", "present.%d.value"],
            }
        }

    def roles(self, pack_dir: Path) -> dict[str, str]:
        return {self.graph_name: "decoder", self.graph_name + ".data": "weights", "tokenizer.json": "tokenizer"}

    def _save_tokenizer(self, folder: Path) -> None:
        self.source.extras["tokenizer"].save_pretrained(str(folder))
        # Keep only what the engine reads; tokenizer code from a source never travels.
        for f in folder.iterdir():
            if f.suffix == ".py":
                f.unlink()


@register("text", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "granite", "olmo", "nemotron", "smollm3")
class GenaiDecoderExport(TextDecoderExport):
    runtime = "onnxruntime-genai"

    def convert(self, workdir: Path) -> Path:
        hf = workdir / "hf"
        self.source.model.save_pretrained(str(hf))
        self._save_tokenizer(hf)
        out = workdir / "fp32"
        self._build(hf, out, "fp32", workdir / "cache")
        for name in TOKENIZER_FILES:
            if (hf / name).is_file() and not (out / name).is_file():
                shutil.copy2(hf / name, out / name)
        return out

    def _build(self, hf: Path, out: Path, precision: str, cache: Path, extra: tuple[str, ...] = ()) -> None:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache)]
        if extra:
            cmd += ["--extra_options", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=offline_env())
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ExportError("onnxruntime-genai's model builder failed: " + " | ".join(tail))

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> dict[str, Any]:
        if precision == "int4":
            # 4-bit weights with the zero-point rounding corrected, 8-bit head (quantize/int4.py)
            quantize.copy_side_files(fp32_dir, out_dir)
            vocab = self.source.model.config.vocab_size
            return {"quantization": quantize.int4_offset_corrected(fp32_dir / self.graph_name, out_dir / self.graph_name, head_rows=vocab)}
        if precision == "int8":
            quantize.copy_side_files(fp32_dir, out_dir)
            quantize.matmul_nbits(fp32_dir / self.graph_name, out_dir / self.graph_name, bits=8)
        elif precision == "fp16":
            # Half precision needs fp16-typed attention ops: the builder emits them directly,
            # from the Hugging Face folder convert saved beside the fp32 graph.
            shutil.rmtree(out_dir)
            self._build(fp32_dir.parent / "hf", out_dir, "fp16", fp32_dir.parent / "cache")
            for name in TOKENIZER_FILES:
                if (fp32_dir / name).is_file() and not (out_dir / name).is_file():
                    shutil.copy2(fp32_dir / name, out_dir / name)
        return {}


@register("text", "gpt2")
class TorchDecoderExport(TextDecoderExport):
    runtime = "onnxruntime"
    graph_name = "decoder.onnx"

    def io_names(self) -> dict[str, Any]:
        io = super().io_names()
        io["decoder"]["inputs"].insert(2, "position_ids")
        return io

    def convert(self, workdir: Path) -> Path:
        from .torch_graph import export_decoder

        out = workdir / "fp32"
        out.mkdir()
        export_decoder(self.source.model, out / self.graph_name, self.layers, self.kv_heads, self.head_dim)
        self._save_tokenizer(out)
        return out

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> dict[str, Any]:
        quantize.copy_side_files(fp32_dir, out_dir)
        src, dst = fp32_dir / self.graph_name, out_dir / self.graph_name
        if precision == "int4":
            quantize.matmul_nbits(src, dst, bits=4)
        elif precision == "int8":
            quantize.dynamic_int8(src, dst)
        elif precision == "fp16":
            quantize.fp16(src, dst)
        return {}

