"""Image sets for the watermark's detection and false-positive rates.

* :func:`generated_images` - stand-ins for what our image engine makes, while it has no
  trained pack in the library: varied synthetic scenes (smooth fields, shapes on
  gradients, textures, dark near-flat scenes, upscaled emoji-like blobs) at the sizes
  the studio saves (128-512 px). ``bench/robustness.py`` uses real engine output when
  an image pack is installed.
* :func:`foreign_images` - 100 images that are not ours: scikit-learn's sample photos
  and crops of them, Fashion-MNIST and scikit-learn digits upscaled, rendered emoji,
  noise, gradients, flat colours and checkerboards.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = ((256, 256), (512, 512), (384, 640), (320, 240), (128, 128), (448, 448))
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")


def synthetic_scene(i: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(1000 + i)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    kind = i % 5
    if kind == 0:  # smooth random colour field
        spectrum = np.fft.fft2(rng.normal(size=(h, w, 3)), axes=(0, 1))
        fy, fx = np.fft.fftfreq(h)[:, None, None], np.fft.fftfreq(w)[None, :, None]
        field = np.fft.ifft2(spectrum / (1 + (fy**2 + fx**2) * 4000), axes=(0, 1)).real
        img = (field - field.min()) / (np.ptp(field) + 1e-9) * 255
    elif kind == 1:  # shapes on a gradient
        img = np.stack([x * 255, y * 255, (1 - x) * 200], -1)
        for _ in range(6):
            cx, cy, r = rng.uniform(0, 1, 3) * [1, 1, 0.3]
            img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 255, 3)
    elif kind == 2:  # fine texture
        img = rng.uniform(0, 255, (h, w, 3))
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3
    elif kind == 3:  # dark, nearly flat
        img = 20 + 10 * np.sin(x * rng.uniform(3, 9))[..., None] * np.ones(3)
    else:  # an emoji-like blob generated at 32x32 and upscaled, as the emoji packs are shown
        small = np.full((32, 32, 3), 255.0)
        yy, xx = np.mgrid[0:32, 0:32]
        small[(xx - 16) ** 2 + (yy - 16) ** 2 < rng.uniform(60, 200)] = rng.uniform(0, 255, 3)
        img = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BICUBIC)).astype(float)
    return np.clip(img, 0, 255).astype(np.uint8)


def generated_images(n: int = 100) -> list[np.ndarray]:
    return [synthetic_scene(i, SIZES[i % len(SIZES)]) for i in range(n)]


def _fashion(count: int) -> list[np.ndarray]:
    if not FASHION.is_file():
        return []
    with gzip.open(FASHION) as fh:
        data = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    out = []
    for k in range(count):
        g = Image.fromarray(data[k * 37]).resize((224, 224), Image.BICUBIC)
        out.append(np.asarray(g.convert("RGB")))
    return out


def _emoji(count: int) -> list[np.ndarray]:
    if not EMOJI_FONT.is_file():
        return []
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(EMOJI_FONT), 109)
    out = []
    for cp in (0x1F34E, 0x1F431, 0x1F499, 0x1F333, 0x1F30A, 0x1F680, 0x1F355, 0x1F308, 0x1F98A, 0x1F33B)[:count]:
        canvas = Image.new("RGB", (136, 128), "white")
        ImageDraw.Draw(canvas).text((0, 0), chr(cp), font=font, embedded_color=True)
        out.append(np.asarray(canvas.resize((272, 256), Image.LANCZOS)))
    return out


def foreign_images(n: int = 100) -> list[np.ndarray]:
    from sklearn.datasets import load_digits, load_sample_images

    rng = np.random.default_rng(7)
    photos = load_sample_images().images
    out: list[np.ndarray] = [p.copy() for p in photos]
    for k in range(34):  # crops of the photos at many positions and sizes
        p = photos[k % 2]
        ch, cw = int(rng.integers(128, 400)), int(rng.integers(128, 600))
        y0, x0 = int(rng.integers(0, p.shape[0] - ch + 1)), int(rng.integers(0, p.shape[1] - cw + 1))
        out.append(p[y0 : y0 + ch, x0 : x0 + cw].copy())
    for k in range(6):  # downscaled and JPEG-compressed photos
        im = Image.fromarray(photos[k % 2]).resize((320 - 20 * k, 214 - 13 * k), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70 + 5 * k)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    out += _fashion(12)
    digits = load_digits().images
    for k in range(8):
        g = (digits[k * 11] / 16 * 255).astype(np.uint8)
        out.append(np.asarray(Image.fromarray(g).resize((256, 256), Image.NEAREST if k % 2 else Image.BICUBIC).convert("RGB")))
    out += _emoji(10)
    for k in range(8):  # noise
        h, w = int(rng.integers(128, 512)), int(rng.integers(128, 512))
        noise = [rng.uniform(0, 255, (h, w, 3)), rng.normal(128, 40, (h, w, 3)), (rng.uniform(size=(h, w, 1)) > 0.5) * 255.0 * np.ones(3)][k % 3]
        out.append(np.clip(noise, 0, 255).astype(np.uint8))
    for k in range(8):  # gradients, flat colours, checkerboards
        h, w = 256, 256 + 32 * k
        y, x = np.mgrid[0:h, 0:w]
        if k % 3 == 0:
            img = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 90.0)], -1)
        elif k % 3 == 1:
            img = np.ones((h, w, 3)) * rng.uniform(0, 255, 3)
        else:
            img = ((x // (8 + 4 * k) + y // (8 + 4 * k)) % 2)[..., None] * np.array([230.0, 40, 40])
        out.append(img.astype(np.uint8))
    k = 0
    while len(out) < n:  # top up with more crops if a system data set is missing
        p = photos[k % 2]
        out.append(p[k * 7 : k * 7 + 200, k * 11 : k * 11 + 300].copy())
        k += 1
    return out[:n]


def jpeg(image: np.ndarray, quality: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def half(image: np.ndarray, resample=Image.BICUBIC) -> np.ndarray:
    im = Image.fromarray(image)
    return np.asarray(im.resize((im.width // 2, im.height // 2), resample))


ATTACKS = {
    "PNG as saved": lambda a: a,
    "JPEG q85": jpeg,
    "50% resize": half,
    "JPEG q85 then 50% resize": lambda a: half(jpeg(a)),
    "50% resize then JPEG q85": lambda a: jpeg(half(a)),
}


def rates(pack_sha256: str, marked: list[np.ndarray], foreign: list[np.ndarray]) -> dict[str, float]:
    """Detection rate per attack on ``marked`` and false positives on ``foreign``
    (as saved and after JPEG q85)."""
    from desktop.outputs.watermark import detect

    out = {}
    for name, attack in ATTACKS.items():
        hits = 0
        for img in marked:
            d = detect(attack(img))
            hits += d.found and pack_sha256.startswith(d.pack_prefix)
        out[name] = hits / len(marked)
    fp = sum(detect(img).found or detect(jpeg(img)).found for img in foreign)
    out["false positives"] = fp / len(foreign)
    return out
