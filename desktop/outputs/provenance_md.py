"""Provenance in exported Markdown: a front-matter block, written and read safely.

The block is the one the chat export writes (:meth:`desktop.outputs.chat_store.ChatStore.to_markdown`):
``---`` lines around ``key: <JSON value>`` lines, which is valid YAML, with the record
under ``provenance``. Reading parses JSON values only (never YAML tags, never code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from desktop.engines.errors import ProvenanceError
from desktop.outputs.provenance import dumps, loads

MAX_FRONT_MATTER_LINES = 500
MAX_READ_BYTES = 1 << 20


def front_matter(record: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """A front-matter block (ending with a newline) carrying ``record``."""
    fields = dict(extra or {})
    fields["ai_generated"] = True
    fields["provenance"] = record
    lines = ["---"] + [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()] + ["---", ""]
    return "\n".join(lines)


def with_front_matter(markdown: str, record: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """``markdown`` with its front matter replaced by (or prefixed with) ours."""
    _, body = split_front_matter(markdown)
    return front_matter(record, extra) + body


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(fields, body). Fields are empty when the text has no front-matter block."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    fields: dict[str, Any] = {}
    for i, line in enumerate(lines[1 : MAX_FRONT_MATTER_LINES + 1], start=1):
        if line.strip() == "---":
            return fields, "\n".join(lines[i + 1 :])
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            continue
        try:
            fields[key.strip()] = json.loads(value.strip())
        except (ValueError, RecursionError):
            fields[key.strip()] = value.strip()  # a plain YAML scalar
    raise ProvenanceError("The Markdown front matter has no closing '---' line.")


def read_markdown_provenance(source: str | Path) -> dict[str, Any] | None:
    """The Atelier record of exported Markdown (a path or the text), or None."""
    if isinstance(source, Path):
        try:
            with open(source, "rb") as fh:
                raw = fh.read(MAX_READ_BYTES)
        except OSError as exc:
            raise ProvenanceError(f"Cannot read '{source.name}': {exc.strerror or exc}.") from None
        text = raw.decode("utf-8-sig", errors="replace")
    else:
        text = source
    fields, _ = split_front_matter(text)
    record = fields.get("provenance", fields if fields.get("generator") == "Atelier" else None)
    if not isinstance(record, dict):
        return None
    try:
        return loads(dumps(record))
    except (ValueError, TypeError) as exc:
        raise ProvenanceError(f"The Markdown front matter carries a malformed Atelier record ({exc}).") from None
