"""int4 for decoder graphs: 4-bit weights whose zero-point rounding is corrected exactly.

Why: onnxruntime's fast CPU MatMulNBits kernel takes only *integer* zero points. A
block's ideal asymmetric grid ``scale * q + min`` (GGUF Q4_1 stores exactly that) needs the
zero point ``-min / scale``, a fraction; rounding it shifts the whole block by up to half a
step, and on SmolLM2 those shifts alone cost 20-30 % perplexity. Float zero points fix it
but send the kernel to a dequantize-then-multiply path 25x slower.

How: with the integer zero point ``z``, every weight is ``scale * (q - z) + offset`` where
``offset = min + scale * z`` is one number per block and output. Its contribution to
``A @ W`` is ``blocksum(A) @ offset``, so the graph appends the block means of ``A``
(Reshape to blocks + ReduceMean; AveragePool is a little cheaper per generated token but
~10x dearer per prompt token) to ``A`` and the weight gets ``block * offset`` as
extra 4-bit rows: one MatMulNBits still does all the work, on ``K + K/32`` inputs. The
extra rows are symmetric 4-bit, so the residual error is ~1/15 of what rounding left.

The output head (``head_rows`` outputs, i.e. the vocabulary) stays 8-bit symmetric, which
is GGUF Q8_0 exactly, and a tied token embedding reads the same 8-bit table through
GatherBlockQuantized instead of keeping a float copy.

Speed: decode of a model this small is bound by the count of ops as much as by bytes, so
projections reading the same input (gate and up) become one MatMulNBits and a Split, which
pays for a good part of the two ops each correction adds.

Activations: at accuracy level 4 the kernel rounds each 32-wide block of ``A`` to int8.
That rounding is the largest error left; most of its effect comes through the projections
that feed attention (q/k/v). ``attention_accuracy_level=1`` gives those float activations:
on SmolLM2 greedy agreement 0.966 -> 0.971..0.985 and max |d logit| 2.6 -> 1.9, for ~5 % of
decode speed, so it is off by default. (An 8-bit MatMulNBits at level 1 dequantizes its
whole table per call, so the head never gets it.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import blockquant as bq

# Ops fed by the projections that ``attention_accuracy_level`` applies to.
ATTENTION_OPS = ("GroupQueryAttention", "MultiHeadAttention", "Attention", "PackedMultiHeadAttention")


def quantize_offset_corrected(
    src: Path, dst: Path, head_rows: int | None = None, block_size: int = 32, accuracy_level: int = 4, attention_accuracy_level: int = 4
) -> dict:
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    plan = _plan(graph, head_rows, block_size, accuracy_level, attention_accuracy_level)
    counts = {"corrected_4bit": 0, "plain_4bit": 0, "head_8bit": 0, "merged_groups": 0, "float_activations": 0, "embedding": "unchanged"}
    new_nodes, extended, done = [], {}, set()
    head = None
    for node in graph.node:
        if node.name not in plan:
            new_nodes.append(node)
            continue
        if node.name in done:  # emitted with the first member of its merged group
            continue
        kind, weight, level, group = plan[node.name]
        weight = numpy_helper.to_array(weight)  # one float weight in memory at a time
        k, n = weight.shape
        base = node.name
        if kind == "head":
            q, scale = bq.symmetric(bq.to_blocks(weight, block_size), 8)
            # level 4 whatever was asked: at level 1 the 8-bit kernel dequantizes the whole table per call
            head = (_matmul_nbits(graph, node.input[0], node.output[0], base, q, scale, None, k, n, 8, block_size, 4), node.input[1])
            new_nodes.append(head[0])
            counts["head_8bit"] += 1
        elif kind == "plain":  # odd shapes: integer-zero-point 4-bit without correction
            q, scale, zero, _ = bq.asymmetric_4bit(bq.to_blocks(weight, block_size))
            new_nodes.append(_matmul_nbits(graph, node.input[0], node.output[0], base, q, scale, zero, k, n, 4, block_size, level))
            counts["plain_4bit"] += 1
        else:
            members = [weight] + [numpy_helper.to_array(plan[name][1]) for name in group[1:]]
            q, scale, zero = (np.concatenate(x, axis=0) for x in zip(*(_corrected_4bit(w, block_size) for w in members)))
            if node.input[0] not in extended:
                new_nodes += _append_block_means(graph, node.input[0], base, k // block_size, block_size, opset)
                extended[node.input[0]] = new_nodes[-1].output[0]
            outputs = [out for name in group for out in _outputs_of(graph, name)]
            widths = [w.shape[1] for w in members]
            merged_out = outputs[0] if len(group) == 1 else base + "/merged_output"
            new_nodes.append(_matmul_nbits(graph, extended[node.input[0]], merged_out, base, q, scale, zero, k + k // block_size, sum(widths), 4, block_size, level))
            if len(group) > 1:
                new_nodes.append(_split(graph, merged_out, outputs, widths, base, opset))
                counts["merged_groups"] += 1
            counts["corrected_4bit"] += len(group)
            counts["float_activations"] += len(group) * (level == 1)
            done.update(group)
    if head is not None and _share_tied_embedding(graph, new_nodes, head[1], head[0], block_size):
        counts["embedding"] = "shares the 8-bit head"
    replaced = {node.input[1] for node in graph.node if node.name in plan}
    used = {i for nd in new_nodes for i in nd.input}
    keep = [t for t in graph.initializer if t.name not in replaced or t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(new_nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=Path(dst).name + ".data")
    return counts


def _plan(graph, head_rows, block: int, accuracy_level: int, attention_accuracy_level: int) -> dict:
    """node name -> (kind, weight initializer [K, N], accuracy level, group) for every MatMul
    with a constant float 2D weight. Corrected projections reading the same input at the same
    level form one group (gate + up), listed in graph order under each member."""
    import onnx

    inits = {t.name: t for t in graph.initializer}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.input, *graph.output] if v.type.tensor_type.HasField("shape")}
    feeds_attention = {i for nd in graph.node if nd.op_type in ATTENTION_OPS for i in nd.input}
    plan, groups = {}, {}
    for node in graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2 or w.data_type != onnx.TensorProto.FLOAT or not node.name:
            continue
        k, n = w.dims
        level = attention_accuracy_level if node.output[0] in feeds_attention else accuracy_level
        if head_rows is not None and n == head_rows:
            plan[node.name] = ("head", w, 4, [node.name])
        elif k % block == 0 and ranks.get(node.input[0]) == 3:
            group = groups.setdefault((node.input[0], level), [])
            group.append(node.name)
            plan[node.name] = ("corrected", w, level, group)
        else:
            plan[node.name] = ("plain", w, level, [node.name])
    return plan


def _corrected_4bit(weight: np.ndarray, block: int):
    """4-bit blocks of ``weight`` plus the rows that carry each block's offset."""
    q, scale, zero, offset = bq.asymmetric_4bit(bq.to_blocks(weight, block))
    # the appended inputs are block *means*, so the rows carry block * offset
    cq, cscale = bq.symmetric(bq.to_blocks((offset * block).T, block), 4)
    return (
        np.concatenate([q, cq], axis=1),
        np.concatenate([scale, cscale], axis=1),
        np.concatenate([zero, np.full(cscale.shape, 8, np.uint8)], axis=1),
    )


def _outputs_of(graph, name: str) -> list:
    return [o for nd in graph.node if nd.name == name for o in nd.output]


def _split(graph, merged: str, outputs: list, widths: list, base: str, opset: int):
    from onnx import helper, numpy_helper

    if opset >= 13:  # split sizes became an input in opset 13
        sizes = base + ".split_sizes"
        graph.initializer.append(numpy_helper.from_array(np.array(widths, np.int64), sizes))
        return helper.make_node("Split", [merged, sizes], outputs, name=base + "/SplitMerged", axis=-1)
    return helper.make_node("Split", [merged], outputs, name=base + "/SplitMerged", axis=-1, split=widths)


def _append_block_means(graph, a: str, base: str, blocks: int, block: int, opset: int) -> list:
    """[B, S, K] -> [B, S, K + K/block]: the input followed by the mean of each block."""
    from onnx import helper, numpy_helper

    shape, grouped, means = f"{base}.block_shape", f"{base}/blocks", f"{base}/block_means"
    graph.initializer.append(numpy_helper.from_array(np.array([0, 0, blocks, block], np.int64), shape))
    nodes = [helper.make_node("Reshape", [a, shape], [grouped], name=base + "/Blocks")]
    if opset >= 18:  # axes became an input in opset 18
        axes = f"{base}.last_axis"
        graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), axes))
        nodes.append(helper.make_node("ReduceMean", [grouped, axes], [means], name=base + "/BlockMeans", keepdims=0))
    else:
        nodes.append(helper.make_node("ReduceMean", [grouped], [means], name=base + "/BlockMeans", axes=[-1], keepdims=0))
    nodes.append(helper.make_node("Concat", [a, means], [base + "/with_block_means"], name=base + "/AppendBlockMeans", axis=-1))
    return nodes


def _matmul_nbits(graph, a: str, out: str, base: str, q, scale, zero, k: int, n: int, bits: int, block: int, accuracy_level: int):
    from onnx import helper, numpy_helper

    names = [f"{base}.qweight", f"{base}.scales"]
    graph.initializer.extend([numpy_helper.from_array(bq.pack_data(q, bits), names[0]), numpy_helper.from_array(scale, names[1])])
    if zero is not None:
        names.append(f"{base}.zero_points")
        graph.initializer.append(numpy_helper.from_array(bq.pack_zero_points(zero, bits), names[2]))
    return helper.make_node(
        "MatMulNBits", [a, *names], [out], name=base + "_Q", domain="com.microsoft", K=k, N=n, bits=bits, block_size=block, accuracy_level=accuracy_level
    )


def _share_tied_embedding(graph, nodes: list, head_weight: str, head, block: int) -> bool:
    """Transpose(head weight) -> Gather becomes GatherBlockQuantized over the head's table.

    The builder ties the embedding to the float lm_head weight through a Transpose; after
    quantization that would keep a full float copy (113 MB for SmolLM2) only to look up one
    row per token. The 8-bit head data [vocab, blocks, block] is the embedding table
    [vocab, hidden] block-quantized along hidden, so a Reshape lets the lookup read it.
    """
    from onnx import helper, numpy_helper

    attrs = {a.name: a.i for a in head.attribute}
    hidden, vocab = attrs["K"], attrs["N"]
    transpose = next((nd for nd in nodes if nd.op_type == "Transpose" and nd.input[0] == head_weight), None)
    gather = next((nd for nd in nodes if transpose is not None and nd.op_type == "Gather" and nd.input[0] == transpose.output[0]), None)
    if gather is None or hidden % block:  # untied, or rows padded past the hidden size
        return False
    shape, table = head_weight + ".table_shape", head_weight + ".table"
    graph.initializer.append(numpy_helper.from_array(np.array([vocab, hidden], np.int64), shape))
    reshape = helper.make_node("Reshape", [head.input[1], shape], [table], name=head.name + "/AsEmbeddingTable")
    lookup = helper.make_node(
        "GatherBlockQuantized", [table, gather.input[1], head.input[2]], list(gather.output), name=gather.name + "BlockQuantized", domain="com.microsoft",
        bits=8, block_size=block, gather_axis=0, quantize_axis=1,
    )
    index = nodes.index(gather)
    nodes[index : index + 1] = [reshape, lookup]
    nodes.remove(transpose)
    return True
