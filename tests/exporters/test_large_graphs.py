"""Graphs over protobuf's 2 GB cap (SD 1.5's UNet is 3.4 GB in fp32) keep their weights in a
file beside the graph through conversion and quantization. A real 2 GB graph is too heavy
for the test machine, so the cap is simulated where protobuf hits it: measuring or
serialising the whole model in memory fails, as it does for real past 2 GB."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf.message import EncodeError
from onnx import TensorProto, helper, numpy_helper


def _graph_with_external_weights(folder, scattered: bool = False):
    """x[1, 64] @ W[64, 64] + b, weights stored outside the graph (as torch writes big ones)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(64).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=not scattered, location="model.onnx.data", size_threshold=0)
    return path


def _run(path) -> np.ndarray:
    x = np.ones((1, 64), dtype=np.float32)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.fixture
def over_the_cap(monkeypatch):
    """Whole-model measuring and in-memory shape inference fail as past 2 GB."""
    import onnxruntime.transformers.float16 as float16

    def too_big(*_a, **_k):
        raise EncodeError("Failed to serialize proto")

    monkeypatch.setattr(onnx.ModelProto, "ByteSize", too_big)
    monkeypatch.setattr(float16, "infer_shapes", too_big)


def test_scattered_torch_weights_are_gathered_without_measuring_the_model(tmp_path, over_the_cap):
    from exporters.image.stable_diffusion.graph import _consolidate

    path = _graph_with_external_weights(tmp_path / "unet", scattered=True)
    reference = _run(path)
    assert len(list(path.parent.iterdir())) == 3  # the graph and one file per tensor
    _consolidate(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx", "model.onnx.data"]
    np.testing.assert_array_equal(_run(path), reference)


def test_int8_of_a_graph_with_external_weights_keeps_them_external(tmp_path):
    from exporters import quantize

    src = _graph_with_external_weights(tmp_path / "fp32")
    dst = tmp_path / "int8" / "model.onnx"
    dst.parent.mkdir()
    quantize.dynamic_int8(src, dst, op_types=["MatMul"])
    assert (dst.parent / "model.onnx.data").is_file()  # one over the cap could not be written single-file
    assert any(n.op_type == "MatMulInteger" for n in onnx.load(str(dst), load_external_data=False).graph.node)
    ours, ref = _run(dst), _run(src)
    assert np.abs(ours - ref).mean() < 0.03 * np.abs(ref).mean()  # int8 rounding, not garbage


def test_fp16_of_a_graph_over_the_cap_converts_from_the_path(tmp_path, over_the_cap):
    from exporters import quantize

    src = _graph_with_external_weights(tmp_path / "fp32")
    dst = tmp_path / "fp16" / "model.onnx"
    dst.parent.mkdir()
    quantize.fp16(src, dst)
    assert (dst.parent / "model.onnx.data").is_file()
    np.testing.assert_allclose(_run(dst), _run(src), atol=0.05)
