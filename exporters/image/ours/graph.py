"""torch.onnx export of our trained generators (their int8 is ``quantize.weight_only_int8``)."""

from __future__ import annotations

from pathlib import Path

import torch

OPSET = 17


def export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict[str, dict[int, str]]) -> None:
    module = module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
