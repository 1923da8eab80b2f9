"""A small ONNX graph writer that streams initializers to one external-data file.

``onnx.save`` with external data first builds every tensor as bytes inside the model
proto, so a conversion would hold the whole model twice. Here each initializer is
written to ``<graph>.data`` the moment it is made and the proto only records where, so
peak memory is one tensor, not the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ALIGN = 64  # lets onnxruntime memory-map initializers on any platform
INLINE_BYTES = 256  # tiny constants stay in the graph file


class GraphWriter:
    def __init__(self, folder: Path, graph_name: str = "model.onnx"):
        from onnx import helper

        self.helper = helper
        self.folder = Path(folder)
        self.graph_name = graph_name
        self.data_name = graph_name + ".data"
        self._data = open(self.folder / self.data_name, "xb")  # exclusive: never write over a file
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._names: set[str] = set()

    def constant(self, name: str, array: np.ndarray) -> str:
        from onnx import TensorProto, numpy_helper

        array = np.asarray(array)
        if name in self._names:
            raise ValueError(f"initializer '{name}' written twice")
        self._names.add(name)
        if array.nbytes <= INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        array = np.ascontiguousarray(array)
        pad = (-self._data.tell()) % ALIGN
        if pad:
            self._data.write(b"\0" * pad)
        offset = self._data.tell()
        self._data.write(memoryview(array).cast("B"))
        t = TensorProto()
        t.name = name
        t.data_type = self.helper.np_dtype_to_tensor_dtype(array.dtype)
        t.dims.extend(array.shape)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.data_name), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(t)
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | int = 1, name: str = "", domain: str = "", **attrs) -> list[str]:
        if isinstance(outputs, int):
            outputs = [f"{name}/output_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))
        return outputs

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(self.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, name: str, elem_type: int, shape: list) -> None:
        self.outputs.append(self.helper.make_tensor_value_info(name, elem_type, shape))

    def save(self, opset: int = 21) -> Path:
        import onnx

        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        graph = self.helper.make_graph(self.nodes, "gguf_decoder", self.inputs, self.outputs, self.initializers)
        model = self.helper.make_model(
            graph, opset_imports=[self.helper.make_opsetid("", opset), self.helper.make_opsetid("com.microsoft", 1)], producer_name="atelier-gguf"
        )
        model.ir_version = 10
        target = self.folder / self.graph_name
        tmp = self.folder / (self.graph_name + ".tmp")
        with open(tmp, "xb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, target)  # the graph appears whole or not at all
        return target

    def abort(self) -> None:
        if not self._data.closed:
            self._data.close()
