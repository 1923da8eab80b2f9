"""``python main.py image --prompt-2/--negative-prompt-2`` on the tiny exported SDXL pack: the
second prompt changes the picture, is recorded in the PNG as written and reproduces the same
pixels; a pack with one text encoder refuses it in one line. And the API server's image
endpoint takes the same two fields."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")  # the tiny SDXL pack is built with it

from desktop.cli import main  # noqa: E402
from desktop.outputs.image_meta import read_settings  # noqa: E402


@pytest.fixture()
def installed(cache_dir):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from tests.tiny_sd import tiny_sd_pack
    from tests.tiny_sdxl import tiny_sdxl_pack

    lib = Library()
    return import_path(tiny_sdxl_pack(cache_dir), lib, name="tiny-sdxl").name, import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd").name


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_second_prompt_is_used_recorded_and_reproduced(installed, tmp_path):
    sdxl, _ = installed
    common = ["image", "--model", sdxl, "--prompt", "a red apple", "--steps", "3", "--seed", "4", "--size", "32x32", "--scheduler", "euler"]
    plain, styled, again = tmp_path / "plain.png", tmp_path / "styled.png", tmp_path / "again.png"
    assert main([*common, "--out", str(plain)]) == 0
    assert main([*common, "--prompt-2", "smiling cat", "--negative-prompt-2", "blurry", "--out", str(styled)]) == 0
    assert np.abs(pixels(styled) - pixels(plain)).mean() > 0.2
    s = read_settings(styled)["settings"]
    assert (s["prompt"], s["prompt_2"], s["negative_prompt"], s["negative_prompt_2"]) == ("a red apple", "smiling cat", "", "blurry")
    assert "prompt_2" not in read_settings(plain)["settings"]
    assert main(["image", "--reproduce", str(styled), "--out", str(again)]) == 0
    assert np.array_equal(pixels(again), pixels(styled))


def test_second_prompt_for_a_one_encoder_pack_is_one_line(installed, tmp_path, capsys):
    _, sd = installed
    rc = main(["image", "--model", sd, "--prompt", "a cat", "--prompt-2", "watercolour", "--size", "32x32", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "\n" not in err and "a second prompt is for SDXL models" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()
