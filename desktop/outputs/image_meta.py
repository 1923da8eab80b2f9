"""Generated images as PNG files that say how they were made, and "reproduce" from them.

Writing goes through the one PNG provenance writer (``desktop.outputs.provenance_png``): the
provenance record - every setting, the seed, the pack's name and hash, "AI-generated" -
in text chunks, plus the invisible watermark naming the pack.

Reading back for "reproduce" is data only: the PNG's chunks are walked without decoding
pixels, the record is parsed as JSON with known keys, and its settings are checked here
against a fixed schema of names, types and ranges. Anything else is refused with a
reason; nothing in a file is ever evaluated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from desktop.engines.errors import ProvenanceError
from desktop.outputs.provenance import provenance_record

_STR = (str,)
_INT = (int,)
_NUM = (int, float)


def _scalar_dict(v: dict) -> bool:
    return len(v) <= 64 and all(isinstance(k, str) and isinstance(x, (str, int, float, bool, type(None))) for k, x in v.items())


# name -> (accepted types, range check). The only settings a file can hand back.
SETTINGS_SCHEMA: dict[str, tuple[tuple[type, ...], Any]] = {
    "prompt": (_STR, lambda v: len(v) <= 20_000),
    "negative_prompt": (_STR, lambda v: len(v) <= 20_000),
    "prompt_2": (_STR, lambda v: len(v) <= 20_000),
    "negative_prompt_2": (_STR, lambda v: len(v) <= 20_000),
    "width": (_INT, lambda v: 1 <= v <= 16384),
    "height": (_INT, lambda v: 1 <= v <= 16384),
    "steps": (_INT, lambda v: 1 <= v <= 1000),
    "guidance": (_NUM, lambda v: math.isfinite(v) and 0 <= v <= 100),
    "scheduler": (_STR, lambda v: len(v) <= 64),
    "seed": (_INT, lambda v: 0 <= v < 2**63),
    "strength": (_NUM, lambda v: math.isfinite(v) and 0 < v <= 1),
    "class_label": ((str, type(None)), lambda v: v is None or len(v) <= 200),
    "extra": ((dict,), _scalar_dict),
    "pack": (_STR, lambda v: len(v) <= 200),
    "architecture": (_STR, lambda v: len(v) <= 200),
    "precision": (_STR, lambda v: len(v) <= 32),
    "init_image_sha256": (_STR, lambda v: len(v) == 64),
}


def image_record(pack, metadata: dict[str, Any], provider: str = "") -> dict[str, Any]:
    """The provenance record of one generated image (``metadata`` from its ImageResult)."""
    return provenance_record("image", pack, settings=dict(metadata), provider=provider, seed=metadata.get("seed"))


def save_image(path: Path | str, image, record: dict[str, Any], overwrite: bool = False) -> Path:
    from desktop.outputs.provenance_png import save_png

    return save_png(path, image, record, overwrite=overwrite)


def read_settings(path: Path | str) -> dict[str, Any]:
    """The provenance record of an Atelier PNG with ``settings`` checked against the
    schema. Raises ProvenanceError with a reason a person understands."""
    from desktop.outputs.provenance_png import read_png_provenance

    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"No such file: '{path.name}'.")
    record = read_png_provenance(path)  # not a PNG / damaged / malformed record: ProvenanceError
    if record is None:
        raise ProvenanceError(f"'{path.name}' carries no Atelier settings (it was not made by Atelier, or its metadata was stripped).")
    if record.get("kind") not in (None, "image"):
        raise ProvenanceError(f"'{path.name}' was not made by the image studio.")
    record["settings"] = check_settings(record.get("settings"), path.name)
    return record


def check_settings(settings: Any, name: str = "the file") -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise ProvenanceError(f"The settings stored in '{name}' are not a set of named values; nothing was restored.")
    out: dict[str, Any] = {}
    for key, (types, ok) in SETTINGS_SCHEMA.items():
        if key not in settings:
            continue
        value = settings[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types) or not ok(value):
            raise ProvenanceError(f"The setting '{key}' stored in '{name}' is invalid; nothing was restored.")
        out[key] = value
    return out


def save_animation(path: Path | str, frames: list, record: dict[str, Any], frame_ms: int = 80, overwrite: bool = False) -> Path:
    """Morph frames as an animated GIF or WebP (by suffix) that says it is AI-generated:
    the provenance record in the GIF comment / in the WebP's XMP. Atomic like PNGs, and
    an existing file is replaced only with ``overwrite``."""
    from xml.sax.saxutils import escape

    import numpy as np
    from PIL import Image

    from desktop.outputs.provenance import AI_NOTE, dumps

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".webp"):
        raise ProvenanceError(f"Animations are saved as .gif or .webp (got '{path.name}').")
    if len(frames) < 2:
        raise ProvenanceError("An animation needs at least two frames.")
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    options: dict[str, Any] = {"save_all": True, "append_images": images[1:], "duration": frame_ms, "loop": 0}
    if suffix == ".gif":
        options["comment"] = f"{AI_NOTE}\n{dumps(record)}".encode()
    else:
        options["lossless"] = True
        options["xmp"] = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:atelier="https://atelier.invalid/ns/1.0/" '
            'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
            f"<atelier:provenance>{escape(dumps(record))}</atelier:provenance></rdf:Description></rdf:RDF></x:xmpmeta>"
        ).encode()
    from desktop.engines.atomic_write import write_atomic

    return write_atomic(path, lambda fh: images[0].save(fh, format=suffix[1:].upper(), **options), overwrite=overwrite)
