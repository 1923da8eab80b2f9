"""Every line the CLI prints goes through here, so nothing printed can drive the terminal.

Model replies, pack manifests (licence ids, names, descriptions) and the records inside
PNG/WAV files are data from elsewhere. Printed raw, an ESC sequence in them can recolour
or clear the terminal, retitle the window, hide text or, with bidi controls, make text
read differently than it is. So control characters (C0 except newline and tab, DEL, C1),
bidi controls, line/paragraph separators and lone surrogates are shown as visible escapes
(``\\x1b``, ``\\u202e``). Model text keeps its newlines; error lines keep none.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(text: object, one_line: bool = False) -> str:
    """``text`` with every character that could control a terminal made visible;
    ``one_line`` also escapes newlines and tabs."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, str(text))


def _write(stream: TextIO, text: str, end: str, flush: bool) -> None:
    try:
        stream.write(text + end)
        if flush:
            stream.flush()
    except UnicodeEncodeError:  # a terminal that cannot show some character (a C locale)
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write((text + end).encode(enc, "backslashreplace").decode(enc, "replace"))


def out(text: object = "", end: str = "\n", flush: bool = False) -> None:
    """Print one line to stdout (a list row, a report line); newlines inside are escaped,
    so a name from a manifest cannot fake a line of its own."""
    _write(sys.stdout, safe_text(text, one_line=True), end, flush)


def out_block(text: object, end: str = "\n", flush: bool = False) -> None:
    """Print text of several lines to stdout (a table, JSON, a model's reply)."""
    _write(sys.stdout, safe_text(text), end, flush)


def err(text: object = "", end: str = "\n", flush: bool = True) -> None:
    """Print a note/progress line to stderr; newlines inside ``text`` are escaped."""
    _write(sys.stderr, safe_text(text, one_line=True), end, flush)


def error_line(message: object) -> None:
    """The one line an error gets: ``error: ...``, never more."""
    text = str(message).strip() or "failed"
    err(f"error: {text}")
