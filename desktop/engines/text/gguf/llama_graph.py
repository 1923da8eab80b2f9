"""The llama-family decoder graph, built from GGUF tensors in the genai model builder's layout.

Same inputs, outputs and fused ops as onnxruntime-genai's builder emits for llama
(SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, one packed QKV
projection into GroupQueryAttention with rotary inside, gate+up as one projection and a
Split, SiLU, 8-bit head), so ``GenaiBackend`` runs it unchanged. Only the projections
differ: they carry the file's own quant blocks (see :mod:`.quant`). A block with a float
minimum (Q4_1, Q5_1, K-quants) uses the kernel's fast integer-zero-point path plus an exact
float correction ``blocksums(A) @ offsets``: a [K/32, N] matmul, 1/32 of the work.

GGUF stores llama's Q and K rows permuted for llama.cpp's interleaved rotary; they are put
back in the Hugging Face order here (whole rows move, blocks stay intact), so the graph
uses GroupQueryAttention's standard (non-interleaved) rotary like the builder's graphs.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from desktop.engines.text.gguf.emit import GraphWriter
from desktop.engines.text.gguf.longrope import longrope_caches
from desktop.engines.text.gguf.quant import BlockWeight, concat_rows, decode, pack_data, pack_zero_points, requantize_4bit, same_form
from desktop.engines.text.gguf.reader import GGUFFile, GGUFFormatError, Tensor, require_supported

F32, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32
ROLES = frozenset({"qkv", "o", "gate_up", "down"})
# The default mix, chosen by measurement on SmolLM2-135M Q4_1 (teacher-forced greedy
# agreement with transformers over 256 tokens; CPU time per decoded token vs all-int8):
#   all int8 activations 0.969 (1.00x) | float q/k/v 0.980 (~1.1x) | compensated head 0.977
#   (~1.1x) | float q/k/v + compensated head 0.996 (~1.25x) | all float 1.000 (2.26x);
#   float down 0.973, o 0.965, gate/up 0.973, first+last layers 0.973.
# Q/K/V take the int8 rounding worst (attention scores amplify it through softmax) and are
# only 16% of a layer's weights, so they get float activations; the head is compensated.
FLOAT_ROLES = frozenset({"qkv"})
# Head candidates whose logits are recomputed in float (see linear_to): more than any
# sampler's top-k default keeps (llama.cpp 40, ours 40), so every token a sampler can
# draw, and greedy's pick, has its exact logit.
HEAD_RESCORED = 64


class LlamaGraph:
    def __init__(self, gf: GGUFFile, w: GraphWriter, hp: dict, exact_activations: bool = False, float_roles: frozenset = FLOAT_ROLES, head_compensation: bool = False, head_rescored: int = HEAD_RESCORED, head_filter: bool = False):
        """``exact_activations``: projections at accuracy level 1 (float activations) and the
        head compensated (see linear_to), so every logit matches a float evaluation of the
        file's weights to ~1e-3; ~2.5x slower decode. Otherwise the projections named in
        ``float_roles`` (see FLOAT_ROLES) take float activations and the rest level 4:
        activations rounded to int8 per block of 32, llama.cpp's own arithmetic, and the
        head's ``head_rescored`` best candidates get their logits recomputed in float."""
        self.gf, self.w, self.hp = gf, w, hp
        self.head_compensation = exact_activations or head_compensation
        self.head_rescored = 0 if self.head_compensation else head_rescored
        self.head_filter = head_filter  # see _head_with_candidates
        self.float_roles = ROLES if exact_activations else frozenset(float_roles)
        self.counts: dict[str, int] = {}
        self.progress = None  # called (layers done, layers) after each layer
        self._lookups: tuple = ()  # the embedding and head: weights read by a lookup too
        self._written: dict[tuple, str] = {}  # (id(one of those), part) -> its constant
        self._tables: dict[int, tuple] = {}  # id(weight) -> its row-lookup inputs, written once

    # -- tensors -------------------------------------------------------------------------
    def tensor(self, name: str, required: bool = True) -> Tensor | None:
        t = self.gf.tensors.get(name)
        if t is None and required:
            raise GGUFFormatError(f"'{self.gf.path.name}' has no tensor '{name}'; it is not a complete {self.gf.architecture} model.")
        if t is not None:
            require_supported(self.gf, t)
        return t

    def weight(self, name: str, rows: int, cols: int, heads: int = 0):
        t = self.tensor(name)
        if (t.rows, t.cols) != (rows, cols):
            raise GGUFFormatError(f"'{self.gf.path.name}': tensor '{name}' is {t.rows}x{t.cols}, the metadata implies {rows}x{cols}.")
        value = decode(t.kind, t.read(), rows, cols)
        self.counts[t.kind.name] = self.counts.get(t.kind.name, 0) + 1
        if heads:  # undo the rotary row permutation (see module docstring)
            hd = rows // heads
            order = np.arange(rows).reshape(heads, hd // 2, 2).transpose(0, 2, 1).reshape(-1)
            value = value.take_rows(order) if isinstance(value, BlockWeight) else value[order]
        return value

    def vector(self, name: str, size: int) -> str:
        t = self.tensor(name)
        if t.rows * t.cols != size:
            raise GGUFFormatError(f"'{self.gf.path.name}': tensor '{name}' has {t.rows * t.cols} values, expected {size}.")
        return self.w.constant(name, decode(t.kind, t.read(), 1, size).reshape(size))

    # -- ops -----------------------------------------------------------------------------
    def level(self, role: str) -> int:
        """``role`` is "qkv", "o", "gate_up", "down" or "head", with ".<layer>" inside a block."""
        return 1 if role in self.float_roles or role.split(".")[0] in self.float_roles else 4

    def linear(self, a: str, parts: list, base: str, role: str = "head", split: bool = True) -> list[str]:
        """``a @ W.T`` for each of ``parts`` (weights [N, K]); one op when they share a form,
        its output split per part unless ``split`` is False (then one name is returned)."""
        if len(parts) > 1 and not same_form(parts):
            return [self.linear(a, [p], f"{base}_{i}", role)[0] for i, p in enumerate(parts)]
        widths = [p.rows if isinstance(p, BlockWeight) else p.shape[0] for p in parts]
        if isinstance(parts[0], BlockWeight):
            weight = concat_rows(parts) if len(parts) > 1 else parts[0]
            out = self._matmul_nbits(a, weight, base, self.level(role))
        else:
            weight = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
            out = self.w.node("MatMul", [a, self.w.constant(base + ".weight", np.ascontiguousarray(weight.T))], name=base + "/MatMul")[0]
        if len(parts) == 1 or not split:
            return [out]
        sizes = self.w.constant(base + ".split_sizes", np.array(widths, np.int64))
        return self.w.node("Split", [out, sizes], len(parts), name=base + "/Split", axis=-1)

    def _block_data(self, wt: BlockWeight, base: str) -> list[str]:
        """qweight and scales, written once even when a lookup (tied embedding, head
        rescoring) reads them too."""
        return [self._once(wt, "qweight", base, lambda: pack_data(wt)), self._once(wt, "scales", base, lambda: wt.scale)]

    def _once(self, wt: BlockWeight, part: str, base: str, make) -> str:
        """One constant of ``wt``, written at its first use; the head's and the embedding's
        are remembered, as the head's last position has a matmul of its own."""
        key = (id(wt), part)
        if key in self._written:
            return self._written[key]
        name = self.w.constant(f"{base}.{part}", make())
        if any(wt is t for t in self._lookups):  # only these are read twice; others are let go
            self._written[key] = name
        return name

    def _matmul_nbits(self, a: str, wt: BlockWeight, base: str, level: int) -> str:
        names = list(self._block_data(wt, base))
        if wt.zero is not None:
            names.append(self._once(wt, "zero_points", base, lambda: pack_zero_points(wt)))
        out = self.w.node(
            "MatMulNBits", [a, *names], name=base + "/MatMulNBits", domain="com.microsoft",
            K=wt.cols, N=wt.rows, bits=wt.bits, block_size=wt.block, accuracy_level=level,
        )[0]
        if wt.offset is None:
            return out
        # exact float minimum: y += blocksums(a) @ offsets  (offsets [K/block, N])
        blocks = wt.cols // wt.block
        shape = self.w.constant(base + ".block_shape", np.array([0, 0, blocks, wt.block], np.int64))
        axes = self.w.constant(base + ".last_axis", np.array([-1], np.int64))
        grouped = self.w.node("Reshape", [a, shape], name=base + "/Blocks")[0]
        sums = self.w.node("ReduceSum", [grouped, axes], name=base + "/BlockSums", keepdims=0)[0]
        offsets = self._once(wt, "offsets", base, lambda: np.ascontiguousarray(wt.offset.T))
        correction = self.w.node("MatMul", [sums, offsets], name=base + "/Offsets")[0]
        return self.w.node("Add", [out, correction], name=base + "/AddOffsets")[0]

    # -- the model -----------------------------------------------------------------------
    def build(self) -> None:
        hp, w = self.hp, self.w
        d, layers, heads, kv, hd, ff, vocab = (hp[k] for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "ffn", "vocab"))
        w.input("input_ids", I64, ["batch_size", "sequence_length"])
        w.input("attention_mask", I64, ["batch_size", "total_sequence_length"])
        for kind in ("key", "value"):
            for i in range(layers):
                w.input(f"past_key_values.{i}.{kind}", F32, ["batch_size", kv, "past_sequence_length", hd])
        one = w.constant("/model/constants/INT64/[1]", np.array([1], np.int64))
        total = w.node("ReduceSum", ["attention_mask", one], name="/model/attn_mask/ReduceSum", keepdims=0)[0]
        seqlens = w.node("Cast", [w.node("Sub", [total, one], name="/model/attn_mask/Sub")[0]], name="/model/attn_mask/SeqLensK", to=I32)[0]
        shape = w.node("Shape", ["attention_mask"], name="/model/attn_mask/Shape")[0]
        width = w.node("Gather", [shape, w.constant("/model/constants/INT64/1", np.array(1, np.int64))], name="/model/attn_mask/Gather", axis=0)[0]
        total_len = w.node("Cast", [width], name="/model/attn_mask/TotalLength", to=I32)[0]
        fam = hp["family"]
        if hp.get("longrope"):  # Phi-3 long context: short/long tables picked by length
            rotary = longrope_caches(w, total_len, hp["rope_base"], hp["rope_dim"], hp["context"], hp["longrope"])
        else:
            rotary = self._rotary_caches("", hp["rope_base"], hp["rope_linear_factor"])
        local_rotary = self._rotary_caches("local_", fam.local_rope_base, 1.0) if fam.local_rope_base and fam.sliding_layers else rotary

        embed_t = self.tensor("token_embd.weight")
        embed = self.weight("token_embd.weight", vocab, d)
        head = self.weight("output.weight", vocab, d) if "output.weight" in self.gf.tensors else embed
        self._lookups = (embed, head)
        x = self._embedding(embed, head is embed)
        if fam.gemma:  # Gemma scales the looked-up embedding by sqrt(hidden)
            x = w.node("Mul", [x, w.constant("/model/embed_tokens.scale", np.array(d**0.5, np.float32))], name="/model/embed_tokens/Scale")[0]
        eps = hp["eps"]
        residual, h = x, self._norm(x, "blk.0.attn_norm.weight", d, "/model/layers.0/input_layernorm")
        for i in range(layers):
            p, base = f"blk.{i}.", f"/model/layers.{i}"
            qkv = self._qkv(h, p, base, i, packed=not fam.qk_norm)
            if fam.qk_norm:  # per head, before rotary
                query, key, value = qkv
                query = self._head_norm(query, p + "attn_q_norm.weight", heads, base + "/attn/q_norm")
                key = self._head_norm(key, p + "attn_k_norm.weight", kv, base + "/attn/k_norm")
                qkv = [query, key, value]
            sliding = i in fam.sliding_layers
            cos, sin = local_rotary if sliding else rotary
            attn = w.node(
                "GroupQueryAttention",
                [*(qkv if len(qkv) == 3 else [qkv[0], "", ""]), f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens, total_len, cos, sin],
                [base + "/attn/output_0", f"present.{i}.key", f"present.{i}.value"],
                name=base + "/attn/GroupQueryAttention", domain="com.microsoft",
                num_heads=heads, kv_num_heads=kv, scale=float(fam.attention_scale or hd**-0.5), do_rotary=1, rotary_interleaved=0,
                # same window as transformers' (checked token for token on a window of 8)
                local_window_size=fam.sliding_window if sliding else -1, softcap=float(fam.attn_softcap),
            )[0]
            o = self.linear(attn, [self.weight(p + "attn_output.weight", d, heads * hd)], base + "/attn/o_proj", f"o.{i}")[0]
            if fam.gemma:
                o = self._norm(o, p + "post_attention_norm.weight", d, base + "/post_attention_norm")
            h, residual = self._skip_norm(residual, o, self.vector(p + "ffn_norm.weight", d), base + "/post_attention_layernorm")
            if fam.fused_gate_up:
                gate, up = self._split(self.linear(h, [self.weight(p + "ffn_up.weight", 2 * ff, d)], base + "/mlp/gate_up_proj", f"gate_up.{i}")[0], [ff, ff], base + "/mlp/gate_up_proj")
            else:
                gate, up = self.linear(h, [self.weight(p + "ffn_gate.weight", ff, d), self.weight(p + "ffn_up.weight", ff, d)], base + "/mlp/gate_up_proj", f"gate_up.{i}")
            if fam.gemma:
                act = w.node("Gelu", [gate], name=base + "/mlp/act_fn/Gelu", approximate="tanh")[0]
            else:
                act = w.node("Mul", [gate, w.node("Sigmoid", [gate], name=base + "/mlp/act_fn/Sigmoid")[0]], name=base + "/mlp/act_fn/Mul")[0]
            down = self.linear(w.node("Mul", [act, up], name=base + "/mlp/Mul")[0], [self.weight(p + "ffn_down.weight", d, ff)], base + "/mlp/down_proj", f"down.{i}")[0]
            if fam.gemma:
                down = self._norm(down, p + "post_ffw_norm.weight", d, base + "/post_feedforward_norm")
            norm = f"blk.{i + 1}.attn_norm.weight" if i + 1 < layers else "output_norm.weight"
            where = f"/model/layers.{i + 1}/input_layernorm" if i + 1 < layers else "/model/final_norm"
            h, residual = self._skip_norm(residual, down, self.vector(norm, d), where)
            if self.progress is not None:
                self.progress(i + 1, layers)  # may raise ConversionCancelled
        self.linear_to(h, head, "logits")
        w.output("logits", F32, ["batch_size", "sequence_length", vocab])
        for i in range(layers):
            for kind in ("key", "value"):
                w.output(f"present.{i}.{kind}", F32, ["batch_size", kv, "total_sequence_length", hd])
        self.embedding_type = embed_t.kind.name

    def _qkv(self, h: str, p: str, base: str, i: int, packed: bool) -> list[str]:
        """[q, k, v]; or [qkv], one tensor, when ``packed`` and one projection makes all three:
        GroupQueryAttention unpacks it itself, which saves a Split and its copies per layer."""
        heads, kv, hd, d = (self.hp[k] for k in ("heads", "kv_heads", "head_dim", "hidden"))
        widths = [heads * hd, kv * hd, kv * hd]
        if self.hp["family"].fused_qkv:
            out = self.linear(h, [self.weight(p + "attn_qkv.weight", sum(widths), d)], base + "/attn/qkv_proj", f"qkv.{i}")[0]
            return [out] if packed else self._split(out, widths, base + "/attn/qkv_proj")
        permuted = self.hp["family"].permuted_qk  # llama.cpp's interleaved order (llama files only)
        q = self.weight(p + "attn_q.weight", heads * hd, d, heads=heads if permuted else 0)
        k = self.weight(p + "attn_k.weight", kv * hd, d, heads=kv if permuted else 0)
        v = self.weight(p + "attn_v.weight", kv * hd, d)
        qkv = self.linear(h, [q, k, v], base + "/attn/qkv_proj", f"qkv.{i}", split=not packed)
        return self._qkv_bias(p, qkv, widths, base + "/attn/qkv_proj")

    def _split(self, x: str, widths: list[int], base: str) -> list[str]:
        sizes = self.w.constant(base + ".split_sizes", np.array(widths, np.int64))
        return self.w.node("Split", [x, sizes], len(widths), name=base + "/Split", axis=-1)

    def _norm(self, x: str, weight: str, size: int, name: str) -> str:
        return self.w.node("SimplifiedLayerNormalization", [x, self.vector(weight, size)], name=name, epsilon=self.hp["eps"], axis=-1, stash_type=1)[0]

    def _head_norm(self, x: str, weight: str, heads: int, name: str) -> str:
        """RMSNorm over each head's vector (Qwen3, Gemma3 Q/K norm)."""
        hd = self.hp["head_dim"]
        split = self.w.node("Reshape", [x, self.w.constant(name + ".heads_shape", np.array([0, 0, heads, hd], np.int64))], name=name + "/Heads")[0]
        normed = self._norm(split, weight, hd, name + "/Norm")
        return self.w.node("Reshape", [normed, self.w.constant(name + ".flat_shape", np.array([0, 0, heads * hd], np.int64))], name=name + "/Flat")[0]

    def _qkv_bias(self, p: str, outs: list[str], widths: list[int], base: str) -> list[str]:
        """Qwen2-style Q/K/V biases (float, like the file keeps them), added after the projection."""
        names = [p + f"attn_{x}.bias" for x in "qkv"]
        if not any(n in self.gf.tensors for n in names):
            return outs
        biases = [self.gf.tensors.get(n) for n in names]
        values = [np.zeros(w, np.float32) if t is None else decode(t.kind, t.read(), 1, w).reshape(w) for t, w in zip(biases, widths)]
        if len(outs) == 1:
            values = [np.concatenate(values)]
        return [self.w.node("Add", [o, self.w.constant(f"{base}.bias_{i}", b)], name=f"{base}/AddBias_{i}")[0] for i, (o, b) in enumerate(zip(outs, values))]

    def linear_to(self, a: str, weight, out_name: str) -> None:
        """The output head at accuracy level 4 (at level 1 an 8-bit kernel dequantizes its whole
        table per call: 13x slower decode). Level 4 rounds the hidden state to int8 per block,
        which moves logits by ~1 and flips close calls (SmolLM2's first answer token wins by
        0.08), so the last position's best candidates are rescored exactly (see
        _head_with_candidates); with ``head_compensation`` the rounding residual goes through
        the same weights once more instead (1/254 of the error left, one more head pass)."""
        if self.head_rescored and isinstance(weight, BlockWeight) and self.level("head") == 4:
            out = self._head_with_candidates(a, weight)
        else:
            out = self.linear(a, [weight], "/lm_head", "head")[0]
            if self.head_compensation and isinstance(weight, BlockWeight):
                residual = self._int8_block_residual(a, weight.block, weight.cols, "/lm_head/residual")
                again = self.linear(residual, [weight], "/lm_head/again", "head")[0]
                out = self.w.node("Add", [out, again], name="/lm_head/Compensated")[0]
        cap = float(self.hp["family"].final_softcap)
        if cap > 0:  # Gemma 2: cap * tanh(logits / cap); greedy keeps its pick, sampling does not
            c = self.w.constant("/lm_head/softcap", np.array(cap, np.float32))
            out = self.w.node("Tanh", [self.w.node("Div", [out, c], name="/lm_head/SoftcapDiv")[0]], name="/lm_head/SoftcapTanh")[0]
            out = self.w.node("Mul", [out, c], name="/lm_head/Softcap")[0]
        self.w.node("Identity", [out], [out_name], name="/lm_head/Output")

    def _head_with_candidates(self, a: str, weight: BlockWeight) -> str:
        """Logits at level 4, the last position's ``head_rescored`` highest recomputed in float
        from the head's own rows: the int8 rounding moves a logit by up to ~1, less than the gap
        to the 64th candidate, so the true best tokens are among them and come out exact (greedy
        follows the float model). Only the last position is what the next token is drawn from
        (all of a decode step); rescoring every position of a 4,096-token prompt chunk would
        gather 4,096 x 64 rows. The last position is computed apart and concatenated, which
        costs fewer ops per step than scattering into the whole logits tensor.

        ``head_filter``: the last position's candidates are found through a 4-bit copy of an
        8-bit (or float-minimum) head - half its bytes, ~8% less CPU per step on SmolLM2 (Q8_0
        head). The candidates stay exact, but the other logits of that position move by up to
        ~6 instead of ~1 (mean KL to the float model per step 0.0015 -> 0.011 nats) and the
        pack grows by the copy (+16%), so it is not the default."""
        w, base = self.w, "/lm_head/rescore"
        c = lambda name, values: w.constant(f"{base}.{name}", np.array(values, np.int64))  # noqa: E731
        axis = c("seq_axis", [1])
        earlier = w.node("Slice", [a, c("start", [0]), c("last", [-1]), axis], name=base + "/EarlierHidden")[0]
        hidden = w.node("Slice", [a, c("last_", [-1]), c("end", [1 << 62]), axis], name=base + "/LastHidden")[0]  # [batch, 1, hidden]
        earlier_logits = self.linear(earlier, [weight], "/lm_head", "head")[0]  # empty in a decode step
        coarse = requantize_4bit(weight) if self.head_filter and (weight.bits > 4 or weight.offset is not None) else weight
        scores = self.linear(hidden, [coarse], "/lm_head/last" if coarse is weight else "/lm_head/candidates", "head")[0]  # [batch, 1, vocab]
        idx = w.node("TopK", [scores, c("k", [min(self.head_rescored, weight.rows)])], 2, name=base + "/TopK", axis=-1, largest=1, sorted=0)[1]
        rows = self._rows(weight, idx, "/lm_head", base)  # [batch, 1, k, hidden]
        hidden = w.node("Unsqueeze", [hidden, c("axis", [-2])], name=base + "/Hidden")[0]
        products = w.node("Mul", [rows, hidden], name=base + "/Mul")[0]
        exact = w.node("ReduceSum", [products, c("last_axis", [-1])], name=base + "/Dot", keepdims=0)[0]
        rescored = w.node("ScatterElements", [scores, idx, exact], name=base + "/Scatter", axis=-1)[0]
        return w.node("Concat", [earlier_logits, rescored], name=base + "/Logits", axis=1)[0]

    def _int8_block_residual(self, a: str, block: int, k: int, base: str) -> str:
        """``a`` minus its symmetric int8 rounding per block, as the level-4 kernel rounds it."""
        w = self.w
        blocks = w.node("Reshape", [a, w.constant(base + ".block_shape", np.array([0, 0, k // block, block], np.int64))], name=base + "/Blocks")[0]
        amax = w.node("ReduceMax", [w.node("Abs", [blocks], name=base + "/Abs")[0], w.constant(base + ".last_axis", np.array([-1], np.int64))], name=base + "/AbsMax", keepdims=1)[0]
        scale = w.node("Div", [amax, w.constant(base + ".int8_max", np.array(127.0, np.float32))], name=base + "/Scale")[0]
        safe = w.node("Max", [scale, w.constant(base + ".tiny", np.array(1e-30, np.float32))], name=base + "/SafeScale")[0]
        rounded = w.node("Mul", [w.node("Round", [w.node("Div", [blocks, safe], name=base + "/Div")[0]], name=base + "/Round")[0], safe], name=base + "/Rounded")[0]
        rest = w.node("Sub", [blocks, rounded], name=base + "/Residual")[0]
        return w.node("Reshape", [rest, w.constant(base + ".flat_shape", np.array([0, 0, k], np.int64))], name=base + "/Rows")[0]

    def _skip_norm(self, residual: str, x: str, gamma: str, name: str) -> tuple[str, str]:
        outs = self.w.node(
            "SkipSimplifiedLayerNormalization", [residual, x, gamma], [name + "/output_0", "", "", name + "/output_3"],
            name=name + "/SkipLayerNorm", domain="com.microsoft", epsilon=self.hp["eps"],
        )
        return outs[0], outs[3]

    def _embedding(self, embed, tied: bool) -> str:
        """Token lookup reading the file's own blocks (the head's table when tied), so no
        float copy of the table is made."""
        if not isinstance(embed, BlockWeight):
            table = self.w.constant("model.embed_tokens.weight", embed)
            return self.w.node("Gather", [table, "input_ids"], name="/model/embed_tokens/Gather", axis=0)[0]
        return self._rows(embed, "input_ids", "/lm_head" if tied else "model.embed_tokens", "/model/embed_tokens")

    def _rows(self, wt: BlockWeight, ids: str, store: str, base: str) -> str:
        """Rows ``ids`` of ``wt`` as float [*ids.shape, K], read from the blocks MatMulNBits
        uses (``store`` names them when this writes them first); a float minimum is added
        per block after."""
        w = self.w
        data, scales, zero, offsets = self._table(wt, store)
        inputs = [data, ids, scales] + ([zero] if zero else [])
        x = w.node("GatherBlockQuantized", inputs, name=base + "/GatherBlockQuantized", domain="com.microsoft", bits=wt.bits, block_size=wt.block, gather_axis=0, quantize_axis=1)[0]
        if offsets is None:
            return x
        blocks = wt.scale.shape[1]
        offs = w.node("Gather", [offsets, ids], name=base + "/GatherOffsets", axis=0)[0]
        grouped = w.node("Reshape", [x, w.constant(base + ".block_shape", np.array([-1, blocks, wt.block], np.int64))], name=base + "/Blocks")[0]
        widened = w.node("Reshape", [offs, w.constant(base + ".offset_shape", np.array([-1, blocks, 1], np.int64))], name=base + "/OffsetBlocks")[0]
        added = w.node("Add", [grouped, widened], name=base + "/AddOffsets")[0]
        return w.node("Reshape", [added, w.node("Shape", [x], name=base + "/Shape")[0]], name=base + "/Rows")[0]

    def _table(self, wt: BlockWeight, store: str) -> tuple:
        """GatherBlockQuantized's view of ``wt``: its packed data as a [N, K*bits/8] table,
        scales, zero points (None: the 8-bit default 128) and float minimums; written once."""
        if id(wt) in self._tables:
            return self._tables[id(wt)]
        w = self.w
        rows, blocks = wt.scale.shape
        data, scales = self._block_data(wt, store)
        width = blocks * wt.block * wt.bits // 8
        data = w.node("Reshape", [data, w.constant(store + ".table_shape", np.array([rows, width], np.int64))], name=store + "/AsTable")[0]
        zero = None
        if wt.bits == 4 or wt.zero is not None:  # 4-bit zero points pack two per byte, as the data
            z = wt.zero if wt.zero is not None else np.full((rows, blocks), 2 ** (wt.bits - 1), np.uint8)
            if wt.bits == 4:
                z = np.concatenate([z, np.zeros((rows, 1), np.uint8)], axis=1) if blocks % 2 else z
                z = z[:, 0::2] | (z[:, 1::2] << 4)
            zero = w.constant(store + ".table_zero_points", np.ascontiguousarray(z))
        offsets = None if wt.offset is None else w.constant(store + ".table_offsets", wt.offset)
        self._tables[id(wt)] = (data, scales, zero, offsets)
        return self._tables[id(wt)]

    def _rotary_caches(self, prefix: str, rope_base: float, linear_factor: float) -> tuple[str, str]:
        hp = self.hp
        dim = hp["rope_dim"]
        inv_freq = 1.0 / (rope_base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
        factors = self.gf.tensors.get("rope_freqs.weight")  # Llama 3.1+: per-frequency scaling
        if factors is not None:
            inv_freq = inv_freq / decode(factors.kind, factors.read(), 1, factors.cols).reshape(-1)[: dim // 2].astype(np.float64)
        positions = np.arange(hp["context"], dtype=np.float64) / linear_factor
        angles = np.outer(positions, inv_freq)
        return self.w.constant(prefix + "cos_cache", np.cos(angles).astype(np.float32)), self.w.constant(prefix + "sin_cache", np.sin(angles).astype(np.float32))
