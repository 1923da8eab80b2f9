"""Provenance carried by every output: which pack, which settings, when, "AI-generated".

Every writer (PNG text chunks, WAV LIST/INFO chunk, Markdown front matter) builds its
record here so the fields are the same everywhere. Parsing a record back is data only:
JSON with a known set of fields, never evaluated. This module is the bottom of
``desktop.outputs``: the per-format readers and writers import it, never the reverse.
"""

from __future__ import annotations

import json
import time
from typing import Any

from desktop import __version__

AI_NOTE = "AI-generated with Atelier"
RECORD_KEYS = ("generator", "app_version", "kind", "pack", "pack_sha256", "precision", "provider", "seed", "settings", "created", "note")
MAX_RECORD_CHARS = 64_000


def provenance_record(kind: str, pack, settings: dict[str, Any], provider: str = "", seed: int | None = None) -> dict[str, Any]:
    """``pack`` is a desktop.engines.packs.pack.Pack (or None for outputs without a model)."""
    return {
        "generator": "Atelier",
        "app_version": __version__,
        "kind": kind,
        "pack": pack.name if pack is not None else "",
        "pack_sha256": pack.pack_hash if pack is not None else "",
        "precision": pack.precision if pack is not None else "",
        "provider": provider,
        "seed": seed,
        "settings": settings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": AI_NOTE,
    }


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> dict[str, Any]:
    """Parse a record from an untrusted file: JSON only, known keys only, bounded size.
    Raises ValueError with a readable message."""
    if not isinstance(text, str) or len(text) > MAX_RECORD_CHARS:
        raise ValueError("provenance record is missing or too large")
    try:
        data = json.loads(text)
    except RecursionError:  # "[[[[..." nested beyond Python's limit: hostile, not ours
        raise ValueError("provenance record is nested too deeply") from None
    if not isinstance(data, dict) or data.get("generator") != "Atelier":
        raise ValueError("not an Atelier provenance record")
    return {k: data[k] for k in RECORD_KEYS if k in data}

