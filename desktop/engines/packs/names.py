"""Pack names a person can trust: what the library shows is what it opens.

A name is how the user, the default-model setting and a PNG's record pick a pack, so a
name that *looks* like another one is an impostor waiting to be run. Names may not carry
characters a person cannot see (format characters such as U+200B, bidi controls,
control characters, odd spaces), and two packs may not share a "skeleton": the name
NFKC-normalised, case-folded, with look-alike letters (Cyrillic "о" for Latin "o") mapped
through Unicode's confusables table. Lookups are always by the exact name.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from desktop.engines.errors import PackFormatError

MAX_NAME_CHARS = 200
# Categories a name may not contain: controls, format characters (zero-width, bidi),
# surrogates, private use, unassigned, and separators other than the plain space.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def name_problem(name: object) -> str:
    """Why ``name`` cannot name a pack, or "" when it can."""
    if not isinstance(name, str) or not name.strip():
        return "a pack name must be non-empty text"
    if len(name) > MAX_NAME_CHARS:
        return f"a pack name is at most {MAX_NAME_CHARS} characters"
    if name != name.strip():
        return "a pack name may not start or end with spaces"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"a pack name must be a short single line of text, without control characters (U+{ord(ch):04X})"
        if category in _REFUSED_CATEGORIES or (category == "Zs" and ch != " "):
            label = unicodedata.name(ch, "unnamed character")
            return f"the name contains an invisible or control character (U+{ord(ch):04X} {label})"
    if unicodedata.normalize("NFC", name) != name:
        return "the name is not in normalised Unicode form (NFC)"
    return ""


def check_pack_name(name: object, where: str = "") -> str:
    problem = name_problem(name)
    if problem:
        prefix = f"{where}: " if where else ""
        raise PackFormatError(f"{prefix}pack name {name!r} is refused: {problem}.")
    return name  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _latin_lookalike(ch: str) -> str:
    from confusable_homoglyphs import confusables

    found = confusables.is_confusable(ch, preferred_aliases=["latin"], greedy=True) or []
    for hit in found:
        for glyph in hit.get("homoglyphs", []):
            c = glyph.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalnum():
                return c.lower()
    return ch


def name_skeleton(name: str) -> str:
    """What a name looks like: equal skeletons mean a person cannot tell the names apart."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    out = []
    for ch in folded:
        if ch.isspace() or unicodedata.category(ch) in _REFUSED_CATEGORIES or unicodedata.combining(ch):
            continue
        out.append(ch if ch.isascii() else _latin_lookalike(ch))
    return "".join(out)
