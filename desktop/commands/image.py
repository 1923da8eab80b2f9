"""``image --model M --prompt P --out FILE.png``: generate images to PNG files that carry
every setting, the pack's hash and an "AI-generated" note."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from desktop.cli import command
from desktop.commands import check_output_file, open_model, text_argument
from desktop.console import err
from desktop.engines.errors import InputFileError, RequestError
from desktop.engines.image.init_image import load_init_image


@command("image", "generate an image to a PNG (settings, pack hash and an AI-generated note in its metadata)")
def configure(p):
    p.add_argument("--model", help="image pack name or folder (default: first image model)")
    p.add_argument("--prompt", default=None, help="what to draw ('-' reads stdin)")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write (a batch adds -2, -3, ...)")
    p.add_argument("--negative", help="what to avoid (negative prompt)")
    p.add_argument("--prompt-2", dest="prompt_2", help="SDXL: what the second text encoder reads, often a style (default: --prompt)")
    p.add_argument("--negative-prompt-2", dest="negative_prompt_2", help="SDXL: the second encoder's negative prompt (default: --negative)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--seed", type=int, help="same settings + seed = same pixels (default: random)")
    p.add_argument("--size", help="WxH, e.g. 512x512 (default: the model's)")
    p.add_argument("--scheduler", help="euler | euler_a | ddim | dpmpp_2m | lcm (default: the model's)")
    p.add_argument("--init", type=Path, help="starting image for img2img")
    p.add_argument("--strength", type=float, default=0.75, help="img2img: how much to repaint (0-1]")
    p.add_argument("--mask", type=Path, help="inpainting: white = repaint, black = keep (with --init)")
    p.add_argument("--class-label", help="class for class-conditioned models")
    p.add_argument("--batch", type=int, default=1, help="number of images (seeds follow each other)")
    p.add_argument("--reproduce", type=Path, help="take every setting from an Atelier PNG (flags given here override)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--stats", action="store_true", help="print timings to stderr")
    return run


def parse_size(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    m = re.fullmatch(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*", text)
    if not m:
        raise RequestError(f"Size must look like 512x512 (got '{text}').")
    return int(m.group(1)), int(m.group(2))


def load_mask(path: Path, init):
    """A grey mask the size of the starting image; one of another size is resized, and said so."""
    from desktop.engines.image.inpaint import resize_mask

    if init is None:
        raise RequestError("--mask needs --init: the mask says which part of the starting image to repaint.")
    try:
        mask = load_init_image(path).max(axis=2)
    except InputFileError:
        raise InputFileError(f"No such mask image: '{path}'.") from None
    (h, w), (ih, iw) = mask.shape, init.shape[:2]
    if (h, w) != (ih, iw):
        err(f"note: the mask is {w}x{h} and the starting image {iw}x{ih}; the mask was resized to {iw}x{ih}.")
        mask = resize_mask(mask, iw, ih)
    return mask


def output_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, count + 1)]


def build_request(args):
    from desktop.engines.image.engine import ImageRequest

    base: dict = {}
    if args.reproduce:
        from desktop.outputs.image_meta import read_settings

        record = read_settings(args.reproduce)
        base = dict(record["settings"], _pack_sha256=record.get("pack_sha256", ""), _pack_name=record.get("pack", ""))
    width, height = parse_size(args.size)
    prompt = text_argument(args.prompt, "--prompt") if args.prompt is not None else None
    pick = lambda value, key: value if value is not None else base.get(key)  # noqa: E731
    return ImageRequest(
        prompt=pick(prompt, "prompt") or "",
        negative_prompt=pick(args.negative, "negative_prompt") or "",
        prompt_2=pick(args.prompt_2, "prompt_2") or "",
        negative_prompt_2=pick(args.negative_prompt_2, "negative_prompt_2") or "",
        width=pick(width, "width"),
        height=pick(height, "height"),
        steps=pick(args.steps, "steps"),
        guidance=pick(args.guidance, "guidance"),
        scheduler=pick(args.scheduler, "scheduler") or "",
        seed=pick(args.seed, "seed"),
        batch_count=args.batch,
        init_image=(init := load_init_image(args.init) if args.init else None),
        mask=load_mask(args.mask, init) if args.mask else None,
        strength=args.strength if args.init or "strength" not in base else base["strength"],
        class_label=pick(args.class_label, "class_label"),
        extra=dict(base.get("extra") or {}),
    ), base


def run(args) -> int:
    from desktop.engines.atomic_write import OutputExistsError
    from desktop.engines.events import Done, ImageResult, Notice, Step
    from desktop.outputs.saving import save_image_result

    request, base = build_request(args)
    request.validate()  # generic checks before loading a model
    check_output_file(args.out, ".png")
    paths = output_paths(args.out, request.batch_count)
    taken = [p.name for p in paths if p.exists() or p.is_symlink()]  # a dangling link too
    if taken and not args.overwrite:
        raise RequestError(f"{', '.join(taken)} already exist(s); choose another --out or pass --overwrite.")
    if args.model or not args.reproduce:
        engine = open_model("image", args.model)
    else:
        engine = open_model("image", _pack_for_record(base), allow_path=False)
    if base.get("_pack_sha256") and base["_pack_sha256"] != engine.pack.pack_hash:
        err(f"note: the image was made with a different pack than '{engine.pack.name}' (hash differs); pixels may differ.")
    tty = sys.stderr.isatty()
    written = []
    try:
        for ev in engine.generate(request):
            if isinstance(ev, Step):
                end = "\r" if tty and ev.index < ev.total else "\n"
                if tty or ev.index == ev.total:
                    err(f"step {ev.index}/{ev.total}", end=end)
            elif isinstance(ev, Notice):
                err(f"note: {ev.message}")
            elif isinstance(ev, ImageResult):
                path = paths[len(written)]
                try:  # exclusive even now: another job may have taken the name since the check
                    save_image_result(ev.image, ev.metadata, engine.pack, engine.provider.used, path=path, overwrite=args.overwrite)
                except OutputExistsError:
                    raise RequestError(f"{path.name} was created by something else while this job ran; nothing was replaced. Choose another --out or pass --overwrite.") from None
                written.append(path)
                err(f"wrote {path} (seed {ev.seed})")
            elif isinstance(ev, Done) and args.stats:
                err(" ".join(f"{k}={v}" for k, v in ev.stats.items()))
    finally:
        engine.close()
    return 0


def _pack_for_record(base: dict) -> str:
    """The library pack a PNG's record names: by exact name (when its hash matches or no
    other pack has the recorded hash), else by hash. A record is read from a file anyone
    may have written, so it never names a folder to open."""
    from desktop.engines.errors import PackError
    from desktop.engines.packs.library import Library

    lib = Library()
    name, digest = base.get("_pack_name") or base.get("pack"), base.get("_pack_sha256") or ""
    entry = None
    if isinstance(name, str) and name:
        try:
            entry = lib.entry(name)
        except PackError:
            entry = None
    if entry is not None and (not digest or entry.pack_hash == digest):
        return entry.name
    same = lib.find_by_hash(digest) if digest else None
    if same is not None:
        return same.name
    if entry is not None:
        return entry.name  # the hash differs: run() says so before generating
    raise RequestError(f"The image was made with the model {name!r}, which is not in the library (and no installed pack has its hash). Install it, or choose one with --model.")
