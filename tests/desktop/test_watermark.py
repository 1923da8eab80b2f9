"""The invisible watermark: survives JPEG q85 and a 50% resize, names the pack, and
does not fire on images that are not ours."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.outputs import watermark as wm
from tests.watermark_images import ATTACKS, foreign_images, generated_images, jpeg, rates

PACK = "5eed" + "0123456789abcdef" * 3 + "abcdef012345"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)))


def test_payload_round_trip_and_crc():
    bits = wm.encode_payload(PACK)
    assert bits.size == wm.CODE_BITS
    assert wm._check_word(bits) == PACK[: wm.PREFIX_HEX]
    bad = bits.copy()
    bad[20] ^= 1
    assert wm._check_word(bad) is None


@pytest.mark.parametrize("index", [0, 1, 2, 3, 5, 7])  # 240 px and larger
def test_marked_image_survives_every_attack(index):
    img = generated_images(8)[index]
    marked = wm.embed(img, PACK)
    assert _psnr(img, marked) > 40  # invisible: ~43 dB
    diff = marked.astype(int) - img
    assert np.abs(diff[..., 0] - diff[..., 1]).mean() < 0.5  # luma only: colours unchanged
    for name, attack in ATTACKS.items():
        found = wm.detect(attack(marked))
        assert found.found and found.pack_prefix == PACK[:10], f"{name}: {found}"


def test_small_images_survive_jpeg_then_half_size():
    img = generated_images(5)[4]
    assert img.shape[:2] == (128, 128)
    found = wm.detect(ATTACKS["JPEG q85 then 50% resize"](wm.embed(img, PACK)))
    assert found.found and found.pack_prefix == PACK[:10]


def test_foreign_images_are_not_detected():
    for img in foreign_images(100)[::5]:
        for candidate in (img, jpeg(img)):
            d = wm.detect(candidate)
            assert not d.found and not d.damaged, d


def test_tiny_images_are_left_unmarked_and_noise_destroys_the_mark():
    tiny = generated_images(1)[0][:48, :48]
    assert np.array_equal(wm.embed(tiny, PACK), tiny)
    assert not wm.detect(tiny).found
    marked = wm.embed(generated_images(1)[0], PACK)
    noisy = np.clip(marked + np.random.default_rng(0).normal(0, 40, marked.shape), 0, 255).astype(np.uint8)
    assert not wm.detect(noisy).found


@pytest.mark.slow
def test_rates_on_100_generated_and_100_foreign_images():
    marked = [wm.embed(img, PACK) for img in generated_images(100)]
    r = rates(PACK, marked, foreign_images(100))
    assert r["JPEG q85 then 50% resize"] >= 0.98, r
    assert r["PNG as saved"] == 1.0 and r["JPEG q85"] == 1.0 and r["50% resize"] >= 0.98, r
    assert r["false positives"] == 0.0, r
