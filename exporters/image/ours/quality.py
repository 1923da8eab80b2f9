"""Measure a finished pack with its judge and write its model card (MODEL_CARD.md).

The same procedure for every pack (see training/evaluate.py): the pack draws
images through the app's own engine for known labels, the judge scores them, and the
same judge scores real held-out images. Floors are fixed per architecture below and
written into the card; tests/engines/test_our_packs.py holds each pack to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from desktop.engines.events import ImageResult
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.providers import RuntimeSettings

from training.evaluate import Judge, card_section

# Floors on the card's figures for generated images (set once from the first trained
# packs, with a margin, so a re-trained pack that is clearly worse fails the tests).
FLOORS = {
    "emoji-diffusion": {"accuracy": 0.30, "frechet": 60.0},
    "fashion-gan": {"accuracy": 0.80, "frechet": 25.0},  # first pack: 0.882 / 13.6
    "fashion-vae": {"accuracy": 0.65, "frechet": 100.0},  # first pack: 0.724 / 76.4 (blurry, as VAEs are)
    # pack of 4000 steps: 0.528 / 174 - a small model (168k parameters, 57 CPU-minutes) whose
    # samples have the right silhouettes but speckled texture; the floor guards against
    # regressions, it does not claim GAN quality
    "fashion-pixelcnn": {"accuracy": 0.45, "frechet": 220.0},
}
FASHION_PER_CLASS = 50
EMOJI_PROMPTS_LIMIT: int | None = None  # all held-out emoji; tests lower it to stay fast


def _draw(engine: ImageEngine, request: ImageRequest) -> list[np.ndarray]:
    return [ev.image for ev in engine.generate(request) if isinstance(ev, ImageResult)]


def generated_fashion(engine: ImageEngine, per_class: int, seed_base: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for k, label in enumerate(engine.pipeline.classes):
        req = ImageRequest(class_label=label, seed=seed_base + k * 1000, batch_count=per_class, width=28, height=28)
        images += [im[..., 0] for im in _draw(engine, req)]
        labels += [k] * per_class
    return np.stack(images), np.array(labels)


def generated_emoji(engine: ImageEngine, prompts: list[str], seed_base: int = 10_000) -> np.ndarray:
    return np.stack([_draw(engine, ImageRequest(prompt=p, seed=seed_base + i, width=32, height=32))[0] for i, p in enumerate(prompts)])


def emoji_held_out():
    """(images, group labels, names) of the glyphs the emoji judge never saw."""
    from pathlib import Path

    from training.emoji_data import GROUPS, build_dataset
    from training.judges import emoji_split

    images, catalogue = build_dataset(Path(".cache/recipes/emoji32.npz"))
    _, held = emoji_split(len(catalogue))
    return images[held], np.array([GROUPS.index(catalogue[i].group) for i in held]), [catalogue[i].name for i in held]


def measure(pack, recipe: str) -> dict[str, Any]:
    """The quality record of a pack; without the evaluation data (Debian packages needed
    only to re-train) it says so instead of inventing a figure."""
    try:
        return _measure(pack, recipe)
    except FileNotFoundError as exc:
        return {"skipped": f"not measured: {exc}", "floor": FLOORS[recipe], "meets_floor": False}


def _measure(pack, arch: str) -> dict[str, Any]:
    engine = ImageEngine(pack, RuntimeSettings(threads=2))
    try:
        if arch == "emoji-diffusion":
            judge = Judge.load("emoji")
            real, labels, names = emoji_held_out()
            real, labels, names = real[:EMOJI_PROMPTS_LIMIT], labels[:EMOJI_PROMPTS_LIMIT], names[:EMOJI_PROMPTS_LIMIT]
            generated = judge.score(generated_emoji(engine, names), labels)
            held = judge.score(real, labels)
            how = f"one image per held-out emoji name ({len(names)} prompts, default steps and guidance, seeds 10000+i)"
        else:
            from training import fashion_data

            judge = Judge.load("fashion")
            gen_images, gen_labels = generated_fashion(engine, FASHION_PER_CLASS)
            generated = judge.score(gen_images, gen_labels)
            test_x, test_y = fashion_data.load("test")
            idx = fashion_data.balanced_subset(test_y, FASHION_PER_CLASS)
            held = judge.score(test_x[idx], test_y[idx])
            how = f"{FASHION_PER_CLASS} images per class (seeds 10000 + 1000*class + i) against {FASHION_PER_CLASS} real test images per class"
    finally:
        engine.close()
    floor = FLOORS[arch]
    ok = generated["accuracy"] >= floor["accuracy"] and generated["frechet"] <= floor["frechet"]
    return {"judge": judge.name, "generated": generated, "real_held_out": held, "floor": floor, "meets_floor": ok, "procedure": how}


JUDGE_TEXT = {
    "emoji": (
        "Judge: a small CNN trained on 80% of the real 32×32 emoji glyphs to name an emoji's Unicode group "
        "(9 groups: Smileys & Emotion, People & Body, Animals & Nature, Food & Drink, Travel & Places, Activities, "
        "Objects, Symbols, Flags); the other 20% are the real held-out images. Generated images are drawn from the "
        "held-out emoji's names, so accuracy says whether e.g. \"red apple\" comes out as recognisable food, and the "
        "Fréchet distance in the judge's 64-d feature space (against its training glyphs) says how emoji-like the "
        "pictures are. This is a CLIP-free proxy: coarse, but built from real data only and identical for real and "
        "generated images (training/judges.py, evaluate.py)."
    ),
    "fashion": (
        "Judge: a small CNN trained on the 60,000 Fashion-MNIST training images (test accuracy in the table's real row); "
        "the 10,000 test images are held out. Accuracy: how often the judge names the class the pack was asked for. "
        "Fréchet distance: FID's formula in the judge's 64-d feature space, against 10,000 training images "
        "(training/judges.py, evaluate.py)."
    ),
}


def measure_and_write_card(pack, recipe: str, ckpt: dict, precision: str) -> tuple[dict, str]:
    from training.model_cards import write_card

    quality = measure(pack, recipe)
    if "skipped" in quality:
        section = f"## Quality\n\n{quality['skipped']}\n"
    else:
        section = card_section(JUDGE_TEXT[quality["judge"]], quality["generated"], quality["real_held_out"], quality["floor"])
    card = write_card(pack, recipe, ckpt, precision, quality, section)
    return quality, card
