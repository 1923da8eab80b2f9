"""Weight quantization of exported ONNX graphs, shared by every modality.

* int4 / int8 weight-only: onnxruntime's MatMulNBits quantizer, asymmetric, block 32.
  Asymmetric (scale + zero point) on 32-wide blocks is the same grid as GGUF Q4_1, which
  is why it keeps SmolLM2's answers where symmetric RTN int4 makes it ramble.
* dynamic int8 (activations quantized at run time): for convolutional graphs.
* fp16: weights and compute in half precision, inputs/outputs kept fp32.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path


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


def dynamic_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    save(half, dst)


def save(model, dst: Path) -> None:
    """Save with weights in one external file when the graph is over protobuf's 2 GB cap
    or just large; small graphs stay single-file."""
    import onnx

    large = model.ByteSize() > 200 * 1024 * 1024 if hasattr(model, "ByteSize") else True
    if large:
        onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=dst.name + ".data")
    else:
        onnx.save_model(model, str(dst))



def blockwise_weights(src: Path, dst: Path, bits: int = 4, block_size: int = 32, head_bits: int = 8, accuracy_level: int = 4, head_rows: int | None = None) -> dict:
    """Weight-only MatMulNBits quantization with *float* zero points.

    Each 32-wide block along the input dimension gets scale = (max - min) / (2^bits - 1)
    and zero point = -min / scale kept as a float. For weights that came from a GGUF
    Q4_1 file this grid is exactly the file's own (llama.cpp stores d = (max-min)/15 and
    m = min per block), so re-encoding is lossless where integer zero points would shift
    every block by up to half a step. The output head (``head_rows`` outputs, e.g. the
    vocabulary) uses ``head_bits`` symmetric blocks, which is exactly GGUF's Q8_0.
    Returns counts for the report.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    new_nodes, dropped, counts = [], set(), {"quantized": 0, "head": 0, "kept": 0}
    for node in model.graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2 or w.data_type != onnx.TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        weight = numpy_helper.to_array(w)  # [K, N]
        k, n = weight.shape
        is_head = head_rows is not None and n == head_rows
        nbits = head_bits if is_head else bits
        # 8-bit blocks are symmetric: the CPU kernel refuses float zero points for them
        packed, scales, zeros = _quantize_blocks(weight, nbits, block_size, symmetric=nbits == 8)
        base = node.name or node.output[0]
        names = [f"{base}.qweight", f"{base}.scales", f"{base}.zero_points"]
        model.graph.initializer.extend([numpy_helper.from_array(packed, names[0]), numpy_helper.from_array(scales, names[1]), numpy_helper.from_array(zeros, names[2])])
        new_nodes.append(
            helper.make_node(
                "MatMulNBits", [node.input[0], *names], list(node.output), name=base + "_Q", domain="com.microsoft",
                K=k, N=n, bits=nbits, block_size=block_size, accuracy_level=accuracy_level,
            )
        )
        dropped.add(w.name)
        counts["head" if is_head else "quantized"] += 1
    still_used = {i for nd in new_nodes for i in nd.input}
    keep = [t for t in model.graph.initializer if t.name not in dropped or t.name in still_used]
    counts["kept"] = sum(1 for t in dropped if t in still_used)  # tied weights still read elsewhere
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=dst.name + ".data")
    return counts


def _quantize_blocks(weight, bits: int, block: int, symmetric: bool):
    """[K, N] fp32 -> (packed [N, blocks, block*bits/8] uint8, scales [N*blocks], zeros [N*blocks])."""
    import numpy as np

    k, n = weight.shape
    blocks = -(-k // block)
    w = np.zeros((blocks * block, n), dtype=np.float32)
    w[:k] = weight
    w = w.T.reshape(n, blocks, block)  # blocks run along K, one row per output
    levels = 2**bits - 1
    if symmetric:
        half = 2 ** (bits - 1) - 1
        scale = np.abs(w).max(-1) / half
        scale[scale == 0] = 1.0
        zero = np.full_like(scale, half + 1, dtype=np.float32)
        q = np.clip(np.rint(w / scale[..., None]) + zero[..., None], 0, levels)
    else:
        lo, hi = w.min(-1), w.max(-1)
        scale = (hi - lo) / levels
        flat = scale == 0
        scale[flat] = 1.0
        zero = -lo / scale
        q = np.clip(np.rint((w - lo[..., None]) / scale[..., None]), 0, levels)
    q = q.astype(np.uint8)
    if symmetric:
        # integer zero points: the CPU kernel takes float ones only for 4-bit weights
        zero = zero.astype(np.uint8) if bits == 8 else zero
    if bits == 4:
        q = q[..., 0::2] | (q[..., 1::2] << 4)  # low nibble holds the even element
    zero = zero if zero.dtype == np.uint8 else zero.astype(np.float32)
    return q, scale.astype(np.float32).reshape(-1), zero.reshape(-1)
