"""Our trained packs, as committed under resources/models: they load (hashes checked),
draw non-constant images of the right size, are reproducible by seed, and their quality
holds up - both the figure their recipe recorded and a cheap recomputation here with the
same judge (training/assets) on a few fresh samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop.engines.events import Done, ImageResult, Step
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.packs.pack import load_pack
from desktop.engines.providers import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "resources" / "models"
# pack -> the recipe that trained it (GAN and VAE run in the generic latent-generator pipeline)
PACKS = {
    "atelier-emoji-diffusion": "emoji-diffusion",
    "atelier-fashion-gan": "fashion-gan",
    "atelier-fashion-vae": "fashion-vae",
    "atelier-fashion-pixelcnn": "fashion-pixelcnn",
}
# Cheap recomputation: far fewer samples than the card's figure, so a looser floor.
CHEAP_FLOORS = {"emoji-diffusion": 0.25, "fashion-gan": 0.6, "fashion-vae": 0.6, "fashion-pixelcnn": 0.3}  # chance: 0.11 (emoji), 0.10 (fashion)
# Prompts fixed before looking at any output: two everyday emoji per group.
EMOJI_PROMPTS = [
    ("grinning face", "Smileys & Emotion"), ("red heart", "Smileys & Emotion"),
    ("waving hand", "People & Body"), ("woman teacher", "People & Body"),
    ("dog face", "Animals & Nature"), ("evergreen tree", "Animals & Nature"),
    ("red apple", "Food & Drink"), ("pizza", "Food & Drink"),
    ("house", "Travel & Places"), ("automobile", "Travel & Places"),
    ("soccer ball", "Activities"), ("wrapped gift", "Activities"),
    ("mobile phone", "Objects"), ("hammer", "Objects"),
    ("right arrow", "Symbols"), ("check mark button", "Symbols"),
]


def run(engine, request):
    return list(engine.generate(request))


@pytest.fixture(scope="module", params=sorted(PACKS))
def engine(request):
    folder = MODELS / request.param
    assert (folder / "manifest.json").is_file(), f"trained pack {request.param} is not committed under resources/models"
    pack = load_pack(folder)  # verifies every file's SHA-256
    assert PACKS[request.param] in (pack.architecture, pack.config.get("recipe"))
    eng = ImageEngine(pack, RuntimeSettings(threads=2))
    yield eng
    eng.close()


def test_pack_is_small_and_documented(engine):
    pack = engine.pack
    assert pack.size_bytes < 12 * 2**20, f"{pack.name} is {pack.size_bytes / 2**20:.1f} MB; committed packs stay small"
    card = pack.path_of("MODEL_CARD.md").read_text(encoding="utf-8")
    assert card == pack.manifest["model_card"]
    floor = pack.config["quality"]["floor"]
    assert f"judge accuracy ≥ {floor['accuracy']}" in card and "real, held out" in card
    assert pack.manifest["validation"]["passed_floor"] is True


def test_recorded_quality_is_above_the_floor(engine):
    q = engine.pack.config["quality"]
    gen, real, floor = q["generated"], q["real_held_out"], q["floor"]
    assert gen["accuracy"] >= floor["accuracy"], q
    assert gen["frechet"] <= floor["frechet"], q
    assert q["meets_floor"] is True
    # the floor is meaningful: real held-out images clear it by a wide margin
    assert real["accuracy"] > floor["accuracy"] and real["frechet"] < floor["frechet"]


def test_generates_non_constant_images_of_the_right_size(engine):
    w, h = engine.capabilities.default_size
    prompt = "red apple" if engine.capabilities.prompt else ""
    events = run(engine, ImageRequest(prompt=prompt, seed=3, batch_count=2))
    images = [e.image for e in events if isinstance(e, ImageResult)]
    assert len(images) == 2 and isinstance(events[-1], Done)
    for im in images:
        assert im.shape == (h, w, 3) and im.dtype == np.uint8
        assert im.std() > 10, "a constant (or nearly constant) picture"
    assert not np.array_equal(images[0], images[1]), "two seeds gave the same picture"
    steps = [e for e in events if isinstance(e, Step)]
    assert steps and steps[-1].index == steps[-1].total and steps[-1].preview.dtype == np.uint8


def test_same_seed_same_pixels_and_native_size(engine):
    n = engine.pack.config["sample_size"]
    prompt = "blue heart" if engine.capabilities.prompt else ""
    label = engine.capabilities.classes[1] if engine.capabilities.classes else None
    req = ImageRequest(prompt=prompt, class_label=label, seed=11, width=n, height=n)
    a = [e for e in run(engine, req) if isinstance(e, ImageResult)][0]
    b = [e for e in run(engine, req) if isinstance(e, ImageResult)][0]
    assert a.image.shape == (n, n, 3)
    assert np.array_equal(a.image, b.image)
    assert a.metadata["seed"] == 11 and a.metadata["pack"] == engine.pack.name


def test_cheap_recomputation_of_the_quality_figure(engine):
    from training.evaluate import Judge

    arch = engine.pack.config.get("recipe", engine.pack.architecture)
    if arch == "emoji-diffusion":
        judge = Judge.load("emoji")
        images = [[e for e in run(engine, ImageRequest(prompt=p, seed=i, width=32, height=32)) if isinstance(e, ImageResult)][0].image for i, (p, _) in enumerate(EMOJI_PROMPTS)]
        labels = [judge.classes.index(g) for _, g in EMOJI_PROMPTS]
    else:
        judge = Judge.load("fashion")
        # no class chosen: each image draws its own from its seed and reports it
        results = [e for e in run(engine, ImageRequest(seed=500, batch_count=30, width=28, height=28)) if isinstance(e, ImageResult)]
        images = [r.image[..., 0] for r in results]
        labels = [judge.classes.index(r.metadata["class_label"]) for r in results]
    logits, _ = judge.run(np.stack(images))
    accuracy = float((logits.argmax(1) == np.array(labels)).mean())
    assert accuracy >= CHEAP_FLOORS[arch], f"{engine.pack.name}: judge accuracy {accuracy:.2f} on {len(images)} fresh samples"


def test_setup_installs_every_pack_and_the_emoji_model_is_the_default(tmp_path):
    from desktop import defaults
    from desktop.engines.packs.library import Library

    lib = Library(tmp_path / "library")
    log: list[str] = []
    defaults.install_images(lib, log.append)
    installed = {e.name for e in lib.entries() if e.manifest}
    assert set(defaults.IMAGE_PACKS) == set(PACKS) and set(PACKS) <= installed
    assert lib.first_of("image") == "atelier-emoji-diffusion"
    defaults.install_images(lib, log.append)  # a second run only checks
    assert sum("already installed" in line for line in log) == len(PACKS)


def test_setup_replaces_an_outdated_copy_of_our_pack(tmp_path):
    from desktop import defaults
    from desktop.engines.packs.importers import import_path
    from desktop.engines.packs.library import Library
    from desktop.engines.packs.pack import read_manifest

    lib = Library(tmp_path / "library")
    defaults.install_images(lib, lambda _line: None)
    # an older version of the VAE pack in the library (stand-in: other files, same name)
    lib.remove("atelier-fashion-vae")
    import_path(MODELS / "atelier-fashion-gan", lib, name="atelier-fashion-vae")
    log: list[str] = []
    defaults.install_images(lib, log.append)
    assert "image: updated atelier-fashion-vae" in log
    assert read_manifest(lib.find("atelier-fashion-vae"))["files"] == read_manifest(MODELS / "atelier-fashion-vae")["files"]
    assert sum("already installed" in line for line in log) == len(PACKS) - 1
