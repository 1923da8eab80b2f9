"""The emoji dataset: Noto Color Emoji glyphs at 32x32 with captions from Unicode data.

Sources (Debian packages, needed only to re-train, not to run the app):
* ``fonts-noto-color-emoji``: NotoColorEmoji.ttf, rendered by Pillow at its bitmap size 109;
* ``unicode-data``: emoji-test.txt gives every fully-qualified emoji, its name and group;
* ``unicode-cldr-core``: CLDR annotations give keywords ("apple | fruit | red");
* the ``emoji`` PyPI package gives GitHub-style aliases (":smiley_cat:").

Why several caption sources: the feasibility run used names alone, and most words then
occur in a single name, so the model cannot learn what "cat" or "red" looks like. With
keywords and aliases, common words ("cat", "red", "heart", "face") recur across dozens of
glyphs and the text encoder learns them as concepts.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
CLDR_DIR = Path("/usr/share/unicode/cldr/common")
SIZE = 32
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
# Country and region flags are hundreds of near-identical striped rectangles, each named by
# a word used nowhere else: they would spend capacity without teaching any concept.
SKIPPED_SUBGROUPS = {"country-flag", "subdivision-flag"}
SKIPPED_GROUPS = {"Component"}
GROUPS = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects", "Symbols", "Flags")
WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = {"with", "of", "and", "the", "a", "in", "on", "for", "to", "button"}
MISSING_HELP = "install the Debian packages fonts-noto-color-emoji unicode-data unicode-cldr-core (only needed to re-train)"


@dataclass
class Emoji:
    chars: str
    name: str  # CLDR short name from emoji-test.txt: "red apple"
    group: str
    subgroup: str
    captions: list[str] = field(default_factory=list)  # every phrase that may describe it
    keywords: list[str] = field(default_factory=list)


def words(text: str) -> list[str]:
    """The tokenisation shared with the engine: lowercase alphanumeric runs."""
    return WORD.findall(text.lower())


def read_emoji_test(path: Path = EMOJI_TEST) -> list[Emoji]:
    group = subgroup = ""
    out: list[Emoji] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif "; fully-qualified" in line:
            codes, rest = line.split(";", 1)
            chars = "".join(chr(int(c, 16)) for c in codes.split())
            name = rest.split("#", 1)[1].strip().split(" ", 2)[2]  # "🍎 E0.6 red apple"
            if group in SKIPPED_GROUPS or subgroup in SKIPPED_SUBGROUPS or SKIN_TONES & set(chars):
                continue
            out.append(Emoji(chars, name, group, subgroup))
    return out


def read_cldr_keywords() -> dict[str, list[str]]:
    keywords: dict[str, list[str]] = {}
    for sub in ("annotations", "annotationsDerived"):
        path = CLDR_DIR / sub / "en.xml"
        if not path.is_file():
            continue
        for node in ET.parse(path).getroot().iter("annotation"):
            if node.get("type") != "tts" and node.text:
                cp = node.get("cp", "")
                keywords.setdefault(cp, []).extend(k.strip() for k in node.text.split("|") if k.strip())
    return keywords


def _aliases() -> dict[str, list[str]]:
    try:
        import emoji as emoji_pkg
    except ImportError:
        return {}
    out = {}
    for chars, data in emoji_pkg.EMOJI_DATA.items():
        names = [data.get("en", "")] + list(data.get("alias", []))
        out[chars] = [n.strip(":").replace("_", " ") for n in names if n]
    return out


def _unicode_name(chars: str) -> str:
    base = chars.replace("\ufe0f", "")
    if len(base) != 1:
        return ""
    return unicodedata.name(base, "").lower()


def build_catalogue() -> list[Emoji]:
    for p in (FONT, EMOJI_TEST):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: {MISSING_HELP}")
    items = read_emoji_test()
    cldr = read_cldr_keywords()
    aliases = _aliases()
    for e in items:
        bare = e.chars.replace("\ufe0f", "")
        kws = cldr.get(e.chars) or cldr.get(bare) or []
        e.keywords = sorted({k.lower() for k in kws if k.lower() != e.name.lower()})
        phrases = [e.name, _unicode_name(e.chars), *aliases.get(e.chars, []), *aliases.get(bare, [])]
        seen, caps = set(), []
        for p in phrases:
            p = " ".join(words(p))
            if p and p not in seen:
                seen.add(p)
                caps.append(p)
        e.captions = caps
    return items


def render(chars: str, size: int = SIZE) -> np.ndarray | None:
    """One glyph as size x size x 3 uint8 on white, or None if the font lacks it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 109)  # the only size the bitmap font offers
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((80, 80), chars, font=font, embedded_color=True, anchor="mm")
    box = canvas.getbbox()
    if box is None:
        return None
    alpha = np.asarray(canvas)[..., 3]
    # A sequence the font cannot join renders as two or more glyphs side by side.
    if box[2] - box[0] > 140:
        return None
    if (alpha > 0).mean() < 0.01:
        return None
    glyph = canvas.crop((80 - 68, 80 - 68, 80 + 68, 80 + 68))  # keep the glyph's own margins
    white = Image.new("RGBA", glyph.size, (255, 255, 255, 255))
    white.alpha_composite(glyph)
    return np.asarray(white.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))


def build_dataset(cache: Path | None = None) -> tuple[np.ndarray, list[Emoji]]:
    """(images N x 32 x 32 x 3 uint8, catalogue) rendered once and cached as .npz."""
    import json

    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        return data["images"], [Emoji(**m) for m in meta]
    images, kept = [], []
    for e in build_catalogue():
        img = render(e.chars)
        if img is not None:
            images.append(img)
            kept.append(e)
    arr = np.stack(images)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps([e.__dict__ for e in kept])
        np.savez_compressed(cache, images=arr, meta=np.array(meta))
    return arr, kept
