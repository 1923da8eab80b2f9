"""Look at a training run before it finishes: sample a few prompts from a checkpoint.

    python -m training.preview_emoji .cache/recipes/emoji-run --out /tmp/preview.png

Uses the run's EMA weights, the engine's own tokenizer rules and DDIM scheduler (numpy),
25 steps, guidance 3 (or --guidance); one row per prompt, one column per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

PROMPTS = ["red apple", "smiling cat", "blue heart", "green tree", "grinning face", "pizza", "car", "dog face"]


class _Tokens:
    """The engine's tokenizer over the run's vocabulary (what reference_sample needs)."""

    def __init__(self, vocab_json: dict):
        from desktop.engines.image.pipelines.emoji_vocab import EmojiVocabulary

        self.vocab = EmojiVocabulary(vocab_json)

    def encode(self, text: str):
        return self.vocab.encode(text)


def main(argv=None) -> int:
    from desktop.engines.image.schedulers import make_scheduler

    from .diffusion_schedule import SCHEDULER_CONFIG
    from .emoji_captions import Vocabulary
    from .emoji_data import build_dataset
    from .emoji_diffusion_ref import reference_sample
    from .train_emoji import Both, build_models

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA (early in a run)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    state = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=False)
    _, catalogue = build_dataset(Path(".cache/recipes/emoji32.npz"))
    vocab = Vocabulary.build(catalogue)
    model = Both(*build_models(len(vocab.tokens)))
    model.load_state_dict(state["model" if args.raw else "ema"])
    model.eval()
    tokens = _Tokens(vocab.to_json())
    rows = []
    for prompt in args.prompts:
        row = [reference_sample(model.text, model.unet, tokens, prompt, s, 25, args.guidance, make_scheduler("ddim", SCHEDULER_CONFIG)) for s in range(args.seeds)]
        rows.append(np.concatenate(row, 1))
    from PIL import Image

    sheet = np.concatenate(rows, 0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 3, sheet.shape[0] * 3), Image.Resampling.NEAREST).save(args.out)
    print(f"step {state['step']}: wrote {args.out} (rows: {', '.join(args.prompts)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
