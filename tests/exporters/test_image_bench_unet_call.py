"""bench/image_unet_call.py on the tiny exported SD pack: its "unfused-graph" rewrite is the
same maths as the fused MultiHeadAttention (else the fused-vs-unfused figure would compare
different models), and every variant runs through the engine's session factory."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.tiny_sd import tiny_sd_pack  # noqa: E402


@pytest.fixture(scope="module")
def pack(cache_dir, tmp_path_factory):
    copy = tmp_path_factory.mktemp("bench") / "pack"
    shutil.copytree(tiny_sd_pack(cache_dir), copy)  # the rewrite is written beside the graph
    return copy


def test_unfused_rewrite_computes_what_the_fused_graph_does(pack):
    import onnxruntime as ort

    from bench.image_unet_call import feeds, unfused_graph

    fused_path = pack / "unet" / "model.onnx"
    plain_path = unfused_graph(fused_path)
    plain = onnx.load(str(plain_path), load_external_data=False)
    assert not any(n.op_type == "MultiHeadAttention" for n in plain.graph.node)
    assert sum(n.op_type == "Softmax" for n in plain.graph.node) == sum(n.op_type == "MultiHeadAttention" for n in onnx.load(str(fused_path)).graph.node) > 0
    fused = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"])
    inputs = feeds(fused, "unet", latent=8, batch=2)
    want = fused.run(None, inputs)[0]
    got = ort.InferenceSession(str(plain_path), providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    assert want.shape == (2, 4, 8, 8)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", ["fused", "unfused-kernel", "unfused-graph", "spin", "no-mem-pattern", "no-arena"])
def test_every_variant_measures_a_call(pack, variant):
    from bench import image_unet_call as bench

    args = type("Args", (), dict(pack=pack, component="unet", calls=1, latent=8, batch=2, threads=1, profile=variant == "fused"))()
    got = bench.in_subprocess(args, variant)
    assert got is not None and got["seconds_per_call"] > 0 and got["cpu_seconds_per_call"] > 0 and got["peak_rss"] > 0
    if variant == "fused":  # the profile names the fused operator
        assert "MultiHeadAttention" in got["profile"]
