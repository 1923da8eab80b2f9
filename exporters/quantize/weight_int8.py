"""Weight-only int8 for small convolutional generators.

Each Conv/Gemm/MatMul weight is stored as int8 with one scale per output channel and a
DequantizeLinear in front of the op: the pack shrinks 4x while activations stay fp32
(dynamic activation quantization would cost accuracy in these small convolutional nets
and is not faster on a CPU at these sizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def weight_only_int8(src: Path, dst: Path, min_elements: int = 1024) -> dict:
    """Rewrite ``src`` with int8 weights + per-output-channel scales; returns counts."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    # which axis holds the output channels, per consumer: Conv weight [O, I, kh, kw],
    # MatMul weight [K, N] (output axis 1), Gemm weight per transB
    axis_of: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in inits:
            if node.op_type == "Conv":
                axis = 0
            elif node.op_type == "ConvTranspose":
                axis = 1
            elif node.op_type == "MatMul":
                axis = 1
            else:
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                axis = 0 if trans_b else 1
            axis_of.setdefault(node.input[1], axis)
    new_inits, dq_nodes, done = [], [], 0
    for name, axis in axis_of.items():
        w = numpy_helper.to_array(inits[name])
        if w.dtype != np.float32 or w.size < min_elements:
            continue
        reduce = tuple(i for i in range(w.ndim) if i != axis)
        scale = np.abs(w).max(axis=reduce) / 127.0
        scale[scale == 0] = 1.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        new_inits += [numpy_helper.from_array(q, name + "_int8"), numpy_helper.from_array(scale.astype(np.float32), name + "_scale"), numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zero")]
        dq_nodes.append(helper.make_node("DequantizeLinear", [name + "_int8", name + "_scale", name + "_zero"], [name], name=name + "_dq", axis=axis))
        done += 1
    quantized = {n.output[0] for n in dq_nodes}
    keep = [t for t in model.graph.initializer if t.name not in quantized]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep + new_inits)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(dq_nodes + nodes)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(dst))
    return {"int8_weights": done}

