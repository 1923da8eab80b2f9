"""Train and export the judges that score every pack (see ``evaluate.py``).

* Fashion-MNIST: the classifier trained by ``train_fashion classifier`` (60k training
  images; the 10k test images stay unseen). Labels: the 10 classes.
* Emoji: there is one image per emoji, so "recognisable" cannot mean "the same class as a
  held-out image of the same emoji". The judge instead names the emoji's Unicode *group*
  (Smileys & Emotion, Animals & Nature, Food & Drink, ...; 9 groups from emoji-test.txt),
  trained on 80% of the glyphs; the other 20% are the real held-out set. A pack that draws
  "red apple" as a red round fruit is recognised as Food & Drink; a blob of the right
  colour is not. The Fréchet distance in the same feature space measures how emoji-like
  the pictures are overall. This is a CLIP-free proxy: coarse, but computed from real
  data only and identical for real and generated images.

    nice -n 10 python -m training.judges emoji      # ~3 min
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .evaluate import ASSETS, feature_stats

EMOJI_HELD_OUT_EVERY = 5  # emoji i is held out when i % 5 == 0 (catalogue order)


def export_judge(model: nn.Module, example: torch.Tensor, reference_images: torch.Tensor, classes: list[str], name: str, log) -> None:
    """Write <name>_judge.onnx and its reference feature statistics into assets/."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    path = ASSETS / f"{name}_judge.onnx"
    torch.onnx.export(model, (example,), str(path), input_names=["pixels"], output_names=["logits", "features"], dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}}, opset_version=17, dynamo=False)
    with torch.no_grad():
        feats = torch.cat([model(reference_images[i : i + 512])[1] for i in range(0, len(reference_images), 512)]).numpy()
    mean, cov = feature_stats(feats)
    np.savez(ASSETS / f"{name}_judge_reference.npz", mean=mean, cov=cov, classes=np.array(json.dumps(classes)))
    log(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) and reference statistics over {len(reference_images)} images")


def write_fashion_judge(model: nn.Module, log) -> None:
    from . import fashion_data

    images, labels = fashion_data.load("train")
    idx = np.random.default_rng(0).choice(len(images), 10000, replace=False)
    ref = torch.from_numpy(images[idx]).float().div(255).unsqueeze(1)
    export_judge(model, ref[:2], ref, list(fashion_data.CLASSES), "fashion", log)
    test_x, test_y = fashion_data.load("test")
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(test_x[i : i + 1000]).float().div(255).unsqueeze(1))[0].argmax(1) for i in range(0, 10000, 1000)])
    log(f"fashion judge accuracy on the 10k test images: {(pred.numpy() == test_y).mean():.4f}")


class EmojiJudge(nn.Module):
    feature_dim = 64

    def __init__(self, classes: int):
        super().__init__()
        def conv(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *conv(3, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
            *conv(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, classes)

    def forward(self, pixels):
        feats = self.body(pixels)
        return self.head(feats), feats


def emoji_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    held = np.arange(n) % EMOJI_HELD_OUT_EVERY == 0
    return np.flatnonzero(~held), np.flatnonzero(held)


def train_emoji_judge(steps: int = 1500, seed: int = 0, cache: Path = Path(".cache/recipes/emoji32.npz"), log=print) -> None:
    from .emoji_data import GROUPS, build_dataset

    torch.manual_seed(seed)
    images, catalogue = build_dataset(cache)
    labels = torch.tensor([GROUPS.index(e.group) for e in catalogue])
    x = torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2)
    train, held = emoji_split(len(x))
    model = EmojiJudge(len(GROUPS))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    # class weights: People & Body outnumbers Flags 45 to 1
    counts = torch.bincount(labels[train], minlength=len(GROUPS)).float().clamp(min=1)
    weights = (counts.sum() / counts) / (counts.sum() / counts).mean()
    for step in range(steps):
        rng = np.random.default_rng([seed, step])
        idx = torch.from_numpy(rng.choice(train, 64))
        xb = x[idx]
        dx, dy = rng.integers(-3, 4, 2)
        xb = torch.roll(xb, shifts=(int(dy), int(dx)), dims=(2, 3))  # generators place glyphs loosely
        flip = torch.from_numpy(rng.random(64) < 0.5)
        xb[flip] = xb[flip].flip(3)
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        loss = F.cross_entropy(model(xb)[0], labels[idx], weight=weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 250 == 0:
            model.eval()
            with torch.no_grad():
                acc = (model(x[held])[0].argmax(1) == labels[held]).float().mean().item()
            model.train()
            log(f"emoji judge step {step + 1}/{steps} loss {loss.item():.3f} held-out group accuracy {acc:.3f}")
    export_judge(model, x[:2], x[train], list(GROUPS), "emoji", log)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["emoji"], help="the Fashion-MNIST judge is written by train_fashion classifier")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_emoji_judge()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
