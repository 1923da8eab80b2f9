"""Weight quantization of exported ONNX graphs, shared by every modality.

* int4 for decoders: :func:`int4_offset_corrected` (see quantize/int4.py) - 4-bit weights
  with the zero-point rounding error put back exactly, the 8-bit output head shared with
  the token embedding. Near-lossless on GGUF Q4_1 sources at MatMulNBits speed.
* int4 / int8 weight-only, plain: onnxruntime's MatMulNBits quantizer, block 32.
* dynamic int8 (activations quantized at run time): for convolutional graphs.
* weight-only int8 with per-channel scales (weight_int8.py): for our small generators.
* fp16: weights and compute in half precision, inputs/outputs kept fp32.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .weight_int8 import weight_only_int8

__all__ = ["copy_side_files", "dynamic_int8", "fp16", "int4_offset_corrected", "matmul_nbits", "save", "weight_only_int8"]


def copy_side_files(src: Path, dst: Path) -> None:
    """Everything that is not the ONNX graph or its weights travels unchanged."""
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith((".onnx", ".onnx.data", ".onnx_data")) and f.name != "manifest.json":
            shutil.copy2(f, dst / f.name)


def matmul_nbits(src: Path, dst: Path, bits: int = 4, block_size: int = 32, symmetric: bool = False, accuracy_level: int = 4) -> None:
    """Weight-only quantization of every MatMul with a constant weight."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    model = onnx.load(str(src))
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=symmetric, accuracy_level=accuracy_level)
    q.process()
    q.model.save_model_to_file(str(dst), use_external_data_format=True)


def dynamic_int8(src: Path, dst: Path, op_types: list[str] | None = None) -> None:
    """``op_types`` limits which operators get int8 weights (default: all it can)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # a source over protobuf's 2 GB cap keeps its weights beside it (SD 1.5's UNet): so must
    # the result, whose unquantized tensors alone can still be over the cap
    external = _has_external_data(src)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, use_external_data_format=external,
                     **({"op_types_to_quantize": op_types} if op_types else {}))


def _has_external_data(path: Path) -> bool:
    return any(f.name != path.name and f.name.startswith(path.name) for f in Path(path).parent.iterdir())


def fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # over the 2 GB cap the converter must be given the path: its in-memory shape
    # inference cannot serialise the model, the path-based one can
    model = str(src) if _has_external_data(src) else onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    save(half, dst)


def save(model, dst: Path) -> None:
    """Save with weights in one external file when the graph is over protobuf's 2 GB cap
    or just large; small graphs stay single-file."""
    import onnx

    try:
        large = model.ByteSize() > 200 * 1024 * 1024 if hasattr(model, "ByteSize") else True
    except Exception:  # noqa: BLE001 - protobuf cannot even measure a model over its 2 GB cap
        large = True
    if large:
        onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=dst.name + ".data")
    else:
        onnx.save_model(model, str(dst))


def int4_offset_corrected(src: Path, dst: Path, head_rows: int | None = None, **options) -> dict:
    """The int4 scheme of decoder packs; returns counts for the manifest."""
    from .int4 import quantize_offset_corrected

    return quantize_offset_corrected(src, dst, head_rows=head_rows, **options)
