"""Requests are checked once: early, by whoever first holds them (the window, a command,
the server), and the engine does not repeat the work for an unchanged request.

Before this, one chat message was validated three times (the studio, the job slot, the
engine) and one image's memory was estimated three times. The engine still refuses a
request nobody checked, and one changed since it was checked: assigning any field
clears the mark. Changing a field's contents in place (appending to ``messages``) is not
seen; build a new request instead, as ``dataclasses.replace`` does.
"""

from __future__ import annotations


class ValidatedOnce:
    """Mixin for request dataclasses: subclasses implement ``check()``; ``validate()``
    runs it unless this request already passed it unchanged."""

    _validated = False

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, "_validated", False)
        object.__setattr__(self, name, value)

    def check(self) -> None:
        raise NotImplementedError

    def validate(self) -> None:
        """Raise RequestError with a message for a person; never starts any work."""
        if not self._validated:
            self.check()
            object.__setattr__(self, "_validated", True)

    @property
    def validated(self) -> bool:
        """Whether this request passed ``validate()`` and has not been changed since."""
        return self._validated

    def mark_validated(self) -> None:
        """For an engine that built this request from a validated one plus values it trusts
        (the pack's defaults), so the pipeline behind it does not check it again."""
        object.__setattr__(self, "_validated", True)
