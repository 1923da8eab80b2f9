"""Earlier versions of a regenerated reply, kept with the reply ("‹ 2/3 ›" in its bubble).

Regenerate used to delete the reply it replaced. Now the new reply's stats carry every
version (``versions``: a list of {content, stats}) and which one is shown (``version``); the
message's own content and stats are always those of the version shown, so the model, the
export and the footer see exactly what is on screen, and the store needs no new table.
Choosing another version swaps it in; an edit of the shown version is kept in the list.
"""

from __future__ import annotations

from typing import Any

VERSIONS, SHOWN = "versions", "version"


def _own(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in (VERSIONS, SHOWN)}


def versions_of(content: str, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Every version of a message, oldest first; the shown one as it is now (edits included)."""
    current = {"content": content, "stats": _own(stats)}
    saved = list(stats.get(VERSIONS) or [])
    if not saved:
        return [current]
    shown = stats.get(SHOWN, len(saved) - 1)
    if 0 <= shown < len(saved):
        saved[shown] = current
    return saved


def add_version(old_content: str, old_stats: dict[str, Any], new_content: str, new_stats: dict[str, Any]) -> dict[str, Any]:
    """The stats of a regenerated reply: its own, plus the versions before it (it is shown)."""
    every = versions_of(old_content, old_stats) + [{"content": new_content, "stats": _own(new_stats)}]
    return dict(_own(new_stats), **{VERSIONS: every, SHOWN: len(every) - 1})


def choose_version(content: str, stats: dict[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    """(content, stats) of the message once version ``index`` is the one shown."""
    every = versions_of(content, stats)
    index = max(0, min(index, len(every) - 1))
    chosen = every[index]
    return chosen["content"], dict(chosen["stats"], **{VERSIONS: every, SHOWN: index})


def position(stats: dict[str, Any]) -> tuple[int, int] | None:
    """(shown, count) when a message has more than one version, else None."""
    count = len(stats.get(VERSIONS) or [])
    return (int(stats.get(SHOWN, count - 1)), count) if count > 1 else None
