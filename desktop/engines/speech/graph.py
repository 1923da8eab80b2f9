"""Make a VITS graph's noise come from the caller: the same seed then gives the same audio.

Piper's exports draw Gaussian noise with ``RandomNormalLike`` inside onnxruntime, whose
generator is seeded once per session and advances on every call, so no per-call seed can
reproduce a clip. We replace each such node with a tile of a caller-supplied bank:
``noise_i`` [1, C, B] is repeated along both axes and cut to the shape the node wanted.
Beyond B frames (~12 s of audio for the latent noise) the pattern repeats, which is
inaudible; the engine feeds fresh banks from a seeded generator on every call.

Needs the ``onnx`` package (installed with the export extra); without it an imported
voice keeps its own noise and the engine says a seed cannot repeat it.
"""

from __future__ import annotations

from pathlib import Path

# frames of noise per bank: phoneme-level (duration predictor, 2 channels) and frame-level
DURATION_BANK = 512
LATENT_BANK = 1024


def seed_noise_inputs(src: Path, dst: Path) -> int:
    """Rewrite ``src`` into ``dst`` with noise inputs; returns how many nodes changed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    model = onnx.load(str(src))
    graph = model.graph
    targets = [n for n in graph.node if n.op_type == "RandomNormalLike"]
    if not targets:
        if src != dst:
            onnx.save(model, str(dst))
        return 0
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else 0 for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    one = numpy_helper.from_array(np.array([1], dtype=np.int64), "noise_one")
    graph.initializer.append(one)
    new_nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        i = len([x for x in graph.input if x.name.startswith("noise_")])
        shape = shapes.get(node.input[0], [])
        channels = shape[1] if len(shape) == 3 and shape[1] > 0 else 2
        frames = DURATION_BANK if channels == 2 else LATENT_BANK
        name, p = f"noise_{i}", f"/noise_{i}/"
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, frames]))
        bank_shape = numpy_helper.from_array(np.array([1, channels, frames], dtype=np.int64), p + "bank_shape")
        graph.initializer.append(bank_shape)
        new_nodes += [
            helper.make_node("Shape", [node.input[0]], [p + "want"]),
            # repeats = want // bank + 1 on every axis, then cut back to ``want``
            helper.make_node("Div", [p + "want", p + "bank_shape"], [p + "q"]),
            helper.make_node("Add", [p + "q", "noise_one"], [p + "reps"]),
            helper.make_node("Tile", [name, p + "reps"], [p + "tiled"]),
            helper.make_node("Slice", [p + "tiled", p + "zeros", p + "want"], [node.output[0]]),
        ]
        graph.initializer.append(numpy_helper.from_array(np.zeros(3, dtype=np.int64), p + "zeros"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(targets)
