"""bench/image.py --scale real, on a tiny config bundle: a random pipeline is built from the
bundle's configs alone, our exporter converts it once and quantizes that one export, and the
bench's own measurement of our engine runs on the result."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.tiny_sd import tiny_sd_source  # noqa: E402


@pytest.fixture(scope="module")
def bundle(cache_dir, tmp_path_factory):
    """A configs root whose 'sd15' bundle has the tiny pipeline's configs and no weights."""
    root = tmp_path_factory.mktemp("configs")
    shutil.copytree(tiny_sd_source(cache_dir), root / "sd15", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    (root / "sd15" / "atelier_defaults.json").write_text(json.dumps({"default_steps": 25, "default_guidance": 7.5}))
    return root


def test_random_pipeline_from_configs_exports_once_and_measures(bundle, tmp_path, monkeypatch):
    import diffusers

    from bench import image as bench
    from bench.image_scale import Spec, build_pipeline, export_packs

    spec = Spec("sd15", "sd15", "tiny", 32, 2, 7.5)
    source = build_pipeline(spec, tmp_path / "pipeline", configs=bundle)
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(source), local_files_only=True)
    assert list(pipe.unet.config.block_out_channels) == json.loads((bundle / "sd15" / "unet" / "config.json").read_text())["block_out_channels"]
    assert not (tmp_path / "pipeline.partial").exists()  # the folder appears whole or not at all

    converts = []
    from exporters.image.stable_diffusion.configs import StableDiffusionExport

    original = StableDiffusionExport.convert
    monkeypatch.setattr(StableDiffusionExport, "convert", lambda self, work: converts.append(1) or original(self, work))
    packs = export_packs(source, tmp_path / "cache", ["fp32", "int8"], "tiny")
    assert converts == [1]  # int8 is quantized from the same fp32 export
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["pack-fp32", "pack-int8"]
    int8 = json.loads((packs["int8"] / "manifest.json").read_text())
    assert int8["precision"] == "int8" and int8["architecture"] == "stable-diffusion"
    assert export_packs(source, tmp_path / "cache", ["fp32", "int8"], "tiny") == packs and converts == [1]  # reused

    got = bench.measure_ours(str(packs["int8"]), 1, spec)
    assert got["seconds_per_image"] > 0 and got["seconds_per_unet_call"] > 0 and got["peak_rss"] > 2**20
