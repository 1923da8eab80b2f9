"""Recipe (a): train the text-conditioned emoji diffusion model on this CPU.

    nice -n 10 python -m training.train_emoji --run .cache/recipes/emoji-run

Trains for a fixed number of steps (default 3000, batch 64; ~35-40 min on 2 idle cores with
bf16 autocast), checkpoints every few minutes and resumes from the last checkpoint when
started again. Writes ``final.pt`` (EMA weights, vocabulary, config, timings) which
``python -m exporters image final.pt --out DIR`` turns into a pack.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .diffusion_schedule import SCHEDULER_CONFIG, alphas_cumprod
from .emoji_captions import Vocabulary, batch_ids, sample_caption
from .emoji_data import build_dataset
from .emoji_model import TextEncoder, UNet
from .runs import CHECKPOINT, EMA, FINAL, Clock, RunLog, batch_rng, cosine_lr, load_checkpoint, save_atomic

ARCH = "emoji-diffusion"
MODEL_CONFIG = {"channels": [48, 96, 128], "blocks": [1, 1, 1], "attn": [False, False, True], "ctx_dim": 128, "emb": 256}
TEXT_CONFIG = {"dim": 128, "layers": 2, "heads": 4}
DEFAULTS = {"steps": 3000, "batch": 64, "lr": 6e-4, "warmup": 200, "ema": 0.999, "seed": 0, "min_snr": 5.0}


def build_models(vocab_size: int, model_config=MODEL_CONFIG, text_config=TEXT_CONFIG):
    unet = UNet(channels=tuple(model_config["channels"]), blocks=tuple(model_config["blocks"]), attn=tuple(model_config["attn"]), ctx_dim=model_config["ctx_dim"], emb=model_config["emb"])
    text = TextEncoder(vocab_size, **text_config)
    return unet, text


class Both(torch.nn.Module):
    """Text encoder and UNet trained (and averaged) as one module."""

    def __init__(self, unet, text):
        super().__init__()
        self.unet, self.text = unet, text

    def forward(self, x, t, ids):
        hidden = self.text(ids)
        return self.unet(x, t, hidden, (ids != 0).float())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder (checkpoints, log, final.pt)")
    p.add_argument("--data-cache", type=Path, default=Path(".cache/recipes/emoji32.npz"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = RunLog(args.run)

    images, catalogue = build_dataset(args.data_cache)
    vocab = Vocabulary.build(catalogue)
    data = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    torch.manual_seed(args.seed)
    model = Both(*build_models(len(vocab.tokens)))
    ema = EMA(model, args.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    ac = torch.from_numpy(alphas_cumprod()).float()
    step, clock = 0, Clock()
    state = load_checkpoint(args.run)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, clock = state["step"], Clock(*state["clock"])
        log(f"resumed at step {step}")
    else:
        params = sum(p.numel() for p in model.parameters())
        log(f"start: {len(catalogue)} emoji, vocabulary {len(vocab.tokens)}, {params / 1e6:.2f}M parameters, {vars(args)}")

    def snapshot():
        return {"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(), "step": step, "clock": (clock.wall, clock.cpu), "args": vars(args)}

    last_save, running = clock.wall, []
    model.train()
    while step < args.steps:
        rng = batch_rng(args.seed, step)
        idx = rng.integers(0, len(catalogue), args.batch)
        ids = torch.from_numpy(batch_ids([sample_caption(catalogue[i], rng) for i in idx], vocab))
        x0 = data[idx]
        t = torch.from_numpy(rng.integers(0, 1000, args.batch))
        noise = torch.from_numpy(rng.standard_normal(x0.shape, dtype=np.float32))
        a = ac[t].sqrt()[:, None, None, None]
        s = (1 - ac[t]).sqrt()[:, None, None, None]
        xt = a * x0 + s * noise
        v = a * noise - s * x0
        # min-SNR weighting (Hang et al. 2023), in its v-prediction form: converges faster
        snr = ac[t] / (1 - ac[t])
        weight = torch.clamp(snr, max=args.min_snr) / (snr + 1)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, args.lr, args.warmup)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(xt, t, ids)
        loss = (weight * (pred.float() - v).pow(2).mean((1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, step)
        step += 1
        running.append(loss.item())
        if step % 50 == 0 or step == args.steps:
            log(f"step {step}/{args.steps} loss {np.mean(running):.4f} lr {opt.param_groups[0]['lr']:.2e} wall {clock.wall / 60:.1f} min cpu {clock.cpu / 60:.1f} min")
            running = []
        if clock.wall - last_save > args.checkpoint_minutes * 60:
            save_atomic(snapshot(), args.run / CHECKPOINT)
            last_save = clock.wall
    save_atomic(snapshot(), args.run / CHECKPOINT)
    final = {
        "atelier_recipe": ARCH,
        "unet": ema.model.unet.state_dict(),
        "text": ema.model.text.state_dict(),
        "model_config": MODEL_CONFIG,
        "text_config": TEXT_CONFIG,
        "vocab": vocab.to_json(),
        "scheduler": SCHEDULER_CONFIG,
        "train": {"steps": step, "batch": args.batch, "lr": args.lr, "seed": args.seed, "wall_minutes": round(clock.wall / 60, 1), "cpu_minutes": round(clock.cpu / 60, 1), "images": len(catalogue)},
    }
    save_atomic(final, args.run / FINAL)
    log(f"done: {step} steps in {clock.wall / 60:.1f} min wall ({clock.cpu / 60:.1f} min CPU); wrote {args.run / FINAL}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
