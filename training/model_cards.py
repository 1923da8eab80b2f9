"""Model cards of our trained packs: what the model is, how it was made, how good it is."""

from __future__ import annotations

from pathlib import Path

DESCRIPTIONS = {
    "emoji-diffusion": {
        "title": "Atelier emoji diffusion (32×32, text-conditioned)",
        "what": (
            "A small text-to-image diffusion model that draws emoji-like pictures from short English prompts "
            "(\"red apple\", \"smiling cat\", \"blue heart\"). A word-bag text encoder (word embeddings + 2 transformer "
            "layers, no positions) conditions a pixel-space UNet (v-prediction, cosine schedule) through FiLM and cross "
            "attention. It draws at 32×32; larger sizes are that picture upscaled."
        ),
        "data": (
            "1,609 Noto Color Emoji glyphs (Debian fonts-noto-color-emoji, rendered by Pillow at size 109 and "
            "downsampled to 32×32 on white), skin-tone variants and country/region flags left out. Captions are sampled "
            "per step from the CLDR name, the Unicode character name, GitHub-style aliases (emoji package) and CLDR "
            "keywords (unicode-cldr-core), so common words recur across many glyphs; 10% are empty for "
            "classifier-free guidance."
        ),
        "recipe": "nice -n 10 python -m training.train_emoji --run .cache/recipes/emoji-run",
        "limits": (
            "Knows only the ~2,600 words of its captions (others are ignored with a notice). It reproduces and blends "
            "emoji; it does not compose new scenes, count objects, or render text. 32×32 detail only."
        ),
    },
    "fashion-gan": {
        "title": "Atelier Fashion-MNIST GAN (28×28, class-conditioned)",
        "what": "A DCGAN-style generator (upsampling convolutions, batch norm) with a class embedding, trained with a hinge loss against a spectral-normalised projection discriminator. The exported generator uses EMA weights with recalibrated batch-norm statistics. Served by the app's latent-generator pipeline, which morphs between two seeds.",
        "data": "Fashion-MNIST training set (60,000 grey 28×28 images, 10 classes; Debian dataset-fashion-mnist).",
        "recipe": "nice -n 10 python -m training.train_fashion gan --run .cache/recipes/fashion-gan",
        "limits": "28×28 grey only. Ten classes; no text prompt.",
    },
    "fashion-vae": {
        "title": "Atelier Fashion-MNIST VAE (28×28, class-conditioned)",
        "what": "The decoder of a conditional variational autoencoder (16-d latent, class embedding, transposed convolutions; Bernoulli likelihood, KL warm-up). Samples are smooth and slightly blurry, as VAE samples are. Served by the app's latent-generator pipeline, which morphs between two seeds.",
        "data": "Fashion-MNIST training set (60,000 grey 28×28 images, 10 classes; Debian dataset-fashion-mnist).",
        "recipe": "nice -n 10 python -m training.train_fashion vae --run .cache/recipes/fashion-vae",
        "limits": "28×28 grey only. Ten classes; no text prompt. Blurry detail.",
    },
    "fashion-pixelcnn": {
        "title": "Atelier Fashion-MNIST PixelCNN (28×28, 16 grey levels, class-conditioned)",
        "what": "A gated PixelCNN (shifted convolutions, vertical and horizontal stacks, class bias in every gate) that predicts each pixel's grey level (16 levels) from the pixels above and to the left. The engine draws the 784 pixels one by one, running the graph on the 10 rows that can influence each pixel.",
        "data": "Fashion-MNIST training set (60,000 grey 28×28 images quantised to 16 levels, 10 classes; Debian dataset-fashion-mnist).",
        "recipe": "nice -n 10 python -m training.train_fashion pixelcnn --run .cache/recipes/fashion-pixelcnn",
        "limits": "28×28, 16 grey levels. Slow by nature (784 sequential steps, ~1-3 s per batch). No morph: an autoregressive model has no latent space to walk.",
    },
}


def write_card(pack, recipe: str, ckpt: dict, precision: str, quality: dict, quality_section: str) -> str:
    d = DESCRIPTIONS[recipe]
    train = ckpt.get("train", {})
    size = sum(f.bytes for f in pack.files if f.path.endswith(".onnx"))
    text = (
        f"# {d['title']}\n\n{d['what']}\n\n"
        f"## Training data\n\n{d['data']}\n\n"
        "## How it was made\n\n"
        f"Recipe (reproducible: fixed seed and step count, resumable): `{d['recipe']}`, then "
        f"`python -m exporters image <run>/final.pt --out <pack> --precision {precision}` "
        "(convert → validate against PyTorch → quantize → re-validate → manifest).\n\n"
        f"Training: {train.get('steps')} steps of batch {train.get('batch')}, seed {train.get('seed')}, "
        f"{train.get('wall_minutes')} min wall clock / {train.get('cpu_minutes')} min CPU time on a 2-core CPU "
        "(no GPU) that other jobs shared, so the wall clock overstates: the CPU time is the work itself (on an idle "
        "machine the run takes about that long on one thread, about half with two). "
        f"Pack precision: {precision} ({size / 1e6:.1f} MB of graphs).\n\n"
        f"{quality_section}\n{_verdict(quality)}"
        f"## Limits\n\n{d['limits']}\n\n"
        "## Licence\n\n"
        f"{(pack.manifest.get('license') or {}).get('note', 'Apache-2.0')}\n"
        "Every image Atelier writes with this model carries an \"AI-generated\" note in its PNG metadata.\n"
    )
    Path(pack.root, "MODEL_CARD.md").write_text(text, encoding="utf-8")
    return text


def _verdict(quality: dict) -> str:
    if "skipped" in quality:
        return ""
    g = quality["generated"]
    verdict = "meets" if quality["meets_floor"] else "DOES NOT meet"
    return f"Measured: generated accuracy {g['accuracy']:.3f}, Fréchet {g['frechet']:.2f} ({verdict} the floor). Procedure: {quality['procedure']}.\n\n"
