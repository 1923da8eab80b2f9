"""A contact sheet of our committed packs (docs/our_packs.png), drawn by the app's engine.

    python -m training.contact_sheet --out docs/our_packs.png

Emoji: fixed prompts x 4 seeds. Fashion GAN / VAE / PixelCNN: each class x 4 seeds, plus a
GAN and a VAE morph strip. Nothing is cherry-picked: seeds are 0..3 for every row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "resources" / "models"
EMOJI_PROMPTS = ["red apple", "smiling cat", "blue heart", "green tree", "grinning face", "pizza", "red car", "dog face", "sun", "birthday cake"]
CELL = 64
SEEDS = 4


def _draw(engine, **kw) -> list[np.ndarray]:
    from desktop.engines.events import ImageResult
    from desktop.engines.image.engine import ImageRequest

    return [e.image for e in engine.generate(ImageRequest(**kw)) if isinstance(e, ImageResult)]


def _cell(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((CELL, CELL), Image.Resampling.NEAREST))


def _label(text: str, width: int = 150) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, CELL), (255, 255, 255))
    ImageDraw.Draw(im).text((4, CELL // 2 - 6), text[:24], fill=(0, 0, 0))
    return np.asarray(im)


def _row(label: str, images: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([_label(label)] + [_cell(im) for im in images], 1)


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows], 0)


def build() -> np.ndarray:
    from desktop.engines.image.engine import ImageEngine
    from desktop.engines.packs.pack import load_pack

    rows = []
    emoji = ImageEngine(load_pack(MODELS / "atelier-emoji-diffusion"))
    for prompt in EMOJI_PROMPTS:
        rows.append(_row(f"emoji: {prompt}", _draw(emoji, prompt=prompt, seed=0, batch_count=SEEDS, width=32, height=32)))
    emoji.close()
    for name in ("fashion-gan", "fashion-vae", "fashion-pixelcnn"):
        engine = ImageEngine(load_pack(MODELS / f"atelier-{name}"))
        classes = engine.capabilities.classes
        images = [_draw(engine, class_label=c, seed=0, batch_count=SEEDS) for c in classes]
        rows.append(np.concatenate([_label(name)] + [_label(c.split("/")[0], CELL) for c in classes], 1))
        # classes side by side: one row per seed keeps the sheet compact
        for s in range(SEEDS):
            rows.append(_row(f"{name.split('-')[1]} seed {s}", [imgs[s] for imgs in images]))
        if engine.capabilities.morph:
            from desktop.engines.image.engine import ImageRequest

            from desktop.engines.events import ImageResult

            frames = [e.image for e in engine.morph(ImageRequest(class_label="Ankle boot"), 1, 2, 10) if isinstance(e, ImageResult)]
            rows.append(_row(f"{name.split('-')[1]} morph 1->2", frames))
        engine.close()
    return _pad(rows)


def main(argv=None) -> int:
    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "our_packs.png")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(build()).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
