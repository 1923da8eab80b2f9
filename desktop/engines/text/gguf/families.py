"""What each GGUF architecture adds to the llama decoder, read from the file's metadata.

Every family we convert is a llama-shaped decoder (RMSNorm, rotary attention, gated MLP);
they differ in a handful of switches collected here so the graph code stays one loop:

=========  ===================================================================================
llama      Llama 1/2/3.x (rope scaling, ``rope_freqs``), SmolLM2, and Mistral files (llama.cpp
           writes Mistral 7B as "llama"); Q/K rows permuted for llama.cpp's interleaved rotary
mistral3   Mistral Small 3.x text files: llama.cpp writes them with llama's tensors and
           permutation (its ``Mistral3Model`` is a ``LlamaModel``), so they are llama here;
           a file with YaRN rope scaling or attention temperature scaling is refused by name
qwen2      + Q/K/V biases (found by tensor name)
qwen3      + per-head RMSNorm on Q and K before rotary (``attn_q_norm`` / ``attn_k_norm``)
phi3       Q, K, V fused in one ``attn_qkv`` tensor; gate and up fused in ``ffn_up``; the
           long-context files' LongRoPE factors (see :mod:`.longrope`)
gemma2     embedding x sqrt(hidden), GELU(tanh) MLP, norms after attention and MLP too,
           attention and final logit soft-capping, every other layer sliding-window
gemma3     gemma2 without soft-capping, + Q/K norm, 5 of 6 layers sliding-window with their
           own rope base (10000; the global layers use the file's base and scaling)
=========  ===================================================================================

Gemma's norm weights are stored by llama.cpp with Gemma's ``1 +`` already added, so they are
plain RMSNorm weights here. Mixture-of-experts and multimodal files are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop.engines.text.gguf.reader import GGUFFile, GGUFFormatError

ARCHITECTURES = ("llama", "mistral3", "qwen2", "qwen3", "phi3", "gemma2", "gemma3")
# llama.cpp's own switches for these two: the 27B models scale attention by the hidden size
# per head rather than by the head size (the models' query_pre_attn_scalar)
_GEMMA_27B_LAYERS = {"gemma2": 46, "gemma3": 62}


@dataclass
class Family:
    name: str
    permuted_qk: bool = False  # llama.cpp's interleaved-rotary row order (llama only)
    qk_norm: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    gemma: bool = False  # embedding scale, GELU(tanh), post-attention/post-MLP norms
    attn_softcap: float = 0.0
    final_softcap: float = 0.0
    sliding_window: int = -1  # -1: every layer attends to the whole context
    sliding_layers: frozenset = field(default_factory=frozenset)
    local_rope_base: float = 0.0  # 0: sliding layers use the global rotary
    attention_scale: float = 0.0


def refuse_unsupported(gf: GGUFFile) -> None:
    """MoE and multimodal files get their own sentence; other unknown ones the list."""
    arch, name = gf.architecture, gf.path.name
    if gf.get(f"{arch}.expert_count") or any(n.endswith(("_exps.weight", "ffn_gate_inp.weight")) for n in gf.tensors) or "moe" in arch:
        raise GGUFFormatError(f"'{name}' is a mixture-of-experts model ('{arch}'); Atelier converts dense models only ({', '.join(ARCHITECTURES)}).")
    if gf.get("general.type") == "mmproj" or arch in ("clip", "mllama") or "vl" in arch or any(k.startswith("clip.") for k in gf.metadata):
        raise GGUFFormatError(f"'{name}' is a multimodal ('{arch}') model or projector; Atelier converts text-only models ({', '.join(ARCHITECTURES)}).")
    if arch not in ARCHITECTURES:
        raise GGUFFormatError(f"'{name}' is a '{arch}' model; Atelier converts {', '.join(ARCHITECTURES)} GGUF files so far.")


def family(gf: GGUFFile, layers: int, head_dim: int) -> Family:
    arch = gf.architecture
    window = gf.get(f"{arch}.attention.sliding_window")
    window = int(window) if isinstance(window, int) and window > 0 else -1
    if arch == "mistral3":
        _refuse_mistral3_extras(gf)
    if arch in ("llama", "mistral3", "qwen2"):
        return Family(arch, permuted_qk=arch != "qwen2", sliding_window=window, sliding_layers=_all(layers, window))
    if arch == "qwen3":
        return Family(arch, qk_norm=True)
    if arch == "phi3":
        return Family(arch, fused_qkv=True, fused_gate_up=True, sliding_window=window, sliding_layers=_all(layers, window))
    scale = 0.0
    if layers == _GEMMA_27B_LAYERS[arch]:
        hidden, heads = gf.get(f"{arch}.embedding_length"), gf.get(f"{arch}.attention.head_count")
        scale = float(hidden // heads) ** -0.5
    if arch == "gemma2":
        return Family(
            arch, gemma=True, attn_softcap=float(gf.get(f"{arch}.attn_logit_softcapping", 50.0) or 0.0), final_softcap=float(gf.get(f"{arch}.final_logit_softcapping", 30.0) or 0.0),
            sliding_window=window if window > 0 else 4096, sliding_layers=frozenset(i for i in range(layers) if i % 2 == 0), attention_scale=scale,
        )
    pattern = 6  # gemma3: five sliding-window layers, then one global
    return Family(
        arch, gemma=True, qk_norm=True, final_softcap=float(gf.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0),
        sliding_window=window if window > 0 else 4096, sliding_layers=frozenset(i for i in range(layers) if (i + 1) % pattern), local_rope_base=10000.0, attention_scale=scale,
    )


def _refuse_mistral3_extras(gf: GGUFFile) -> None:
    """Later Mistral 3 files (Ministral 3) add YaRN rope scaling and a position-dependent
    attention temperature; a graph without them would answer wrongly past short prompts."""
    arch, name = gf.architecture, gf.path.name
    if str(gf.get(f"{arch}.rope.scaling.type", "none")) not in ("none", "linear"):
        raise GGUFFormatError(f"'{name}' is a mistral3 model with '{gf.get(f'{arch}.rope.scaling.type')}' rope scaling, which Atelier cannot convert yet; Mistral Small 3.x files without it convert.")
    if gf.get(f"{arch}.attention.temperature_scale") or gf.get(f"{arch}.attention.temperature_length"):
        raise GGUFFormatError(f"'{name}' is a mistral3 model with attention temperature scaling, which Atelier cannot convert yet; Mistral Small 3.x files without it convert.")


def _all(layers: int, window: int) -> frozenset:
    return frozenset(range(layers)) if window > 0 else frozenset()
