"""A message split into the blocks the transcript lays out: paragraphs of markdown and
fenced code blocks (```lang ... ```), which get a monospace box and their own Copy button.

One label per paragraph, not one per message: while a reply streams only its last
paragraph is re-laid out, and a long message costs many small layouts instead of one huge
one (a single 20,000-character label froze the window).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^ {0,3}(```|~~~)\s*([\w+#.-]*)\s*$")
COLLAPSE_LINES = 40
COLLAPSE_CHARS = 4000


@dataclass(frozen=True)
class Block:
    kind: str  # "text" | "code"
    content: str
    lang: str = ""


def split_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    code: list[str] | None = None
    fence, lang = "", ""

    def flush_para() -> None:
        if para and any(line.strip() for line in para):
            blocks.append(Block("text", "\n".join(para).strip("\n")))
        para.clear()

    for line in text.split("\n"):
        m = FENCE.match(line)
        if code is None:
            if m:
                flush_para()
                code, fence, lang = [], m.group(1), m.group(2)
            elif not line.strip():
                flush_para()
            else:
                para.append(line)
        elif m and m.group(1) == fence and not m.group(2):
            blocks.append(Block("code", "\n".join(code), lang))
            code = None
        else:
            code.append(line)
    if code is not None:  # still streaming, or never closed: shown as code so far
        blocks.append(Block("code", "\n".join(code), lang))
    flush_para()
    return blocks


def is_long(text: str) -> bool:
    return len(text) > COLLAPSE_CHARS or text.count("\n") >= COLLAPSE_LINES


def preview(text: str) -> str:
    """The head of a long message: its first lines, at most COLLAPSE_CHARS characters."""
    head = "\n".join(text.split("\n")[: COLLAPSE_LINES // 4])
    return head[: COLLAPSE_CHARS // 4]
