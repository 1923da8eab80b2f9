"""``python main.py image ...`` end to end on the tiny exported SD pack."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from tests.tiny_sd import tiny_sd_pack


@pytest.fixture()
def installed(cache_dir):
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library

    return import_path(tiny_sd_pack(cache_dir), Library(), name="tiny-sd").name


def test_generate_then_reproduce_gives_the_same_pixels(installed, tmp_path, capsys):
    out = tmp_path / "apple.png"
    args = ["image", "--model", installed, "--prompt", "a red apple", "--negative", "blurry", "--out", str(out),
            "--steps", "4", "--guidance", "6", "--seed", "9", "--size", "40x24", "--scheduler", "dpmpp_2m", "--batch", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and "seed 10" in err
    second = tmp_path / "apple-2.png"
    assert Image.open(out).size == (40, 24) and second.is_file()
    from desktop.outputs.image_meta import read_settings

    s = read_settings(second)["settings"]
    assert (s["prompt"], s["negative_prompt"], s["steps"], s["guidance"], s["seed"], s["scheduler"]) == ("a red apple", "blurry", 4, 6.0, 10, "dpmpp_2m")
    again = tmp_path / "again.png"
    assert main(["image", "--reproduce", str(second), "--out", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(second)))


def test_img2img_from_the_command_line(installed, tmp_path):
    init = tmp_path / "init.jpg"
    Image.fromarray(np.full((50, 60, 3), 200, np.uint8)).save(init)
    out = tmp_path / "i2i.png"
    assert main(["image", "--model", installed, "--prompt", "smiling cat", "--init", str(init), "--strength", "0.5", "--steps", "4", "--size", "32x32", "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "100x64"], "multiples of 8"),
        (["--size", "big"], "Size must look like"),
        (["--steps", "0"], "Steps must be"),
        (["--guidance", "nan"], "finite"),
        (["--init", "/etc/hostname"], "not an image"),
        (["--reproduce", "/etc/hostname"], "not a PNG"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(installed, tmp_path, capsys, extra, message):
    rc = main(["image", "--model", installed, "--prompt", "a cat", "--out", str(tmp_path / "x.png"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_existing_output_is_not_overwritten(installed, tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    assert main(["image", "--model", installed, "--prompt", "a cat", "--out", str(out), "--steps", "1"]) == 2
    assert out.read_bytes() == b"precious" and "already exist" in capsys.readouterr().err
