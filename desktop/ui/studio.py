"""What the main window may ask of a tab, as types instead of ``getattr`` probes.

- ``Page``: every tab is told when the window closes (``shutdown``): it stops its jobs and
  closes what it holds (engines, stores, a server) before the window goes.
- ``Stoppable``: Esc stops the visible tab's job (a reply, a batch, an import).
- ``Studio``: a tab that makes something; its ``primary_action`` (Send, Generate, Speak) is
  what Ctrl+Enter does while it shows.
- ``AsksBeforeClosing``: a tab with unsaved work may keep the window open.

They are ``runtime_checkable`` so the window can decide with ``isinstance`` (which checks the
methods exist; the signatures are for the type checker and the reader).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Page(Protocol):
    def shutdown(self) -> None:
        """The window is closing: stop jobs, keep what they made, close engines."""


@runtime_checkable
class Stoppable(Protocol):
    def stop(self) -> None:
        """Stop the job in progress, if any (Esc); a no-op when idle."""


@runtime_checkable
class Studio(Page, Stoppable, Protocol):
    def primary_action(self) -> None:
        """The studio's main button (Ctrl+Enter): send, generate, speak."""


@runtime_checkable
class AsksBeforeClosing(Protocol):
    def confirm_close(self) -> bool:
        """False keeps the window open (the person chose to stay, or a save failed)."""
