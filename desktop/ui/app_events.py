"""Application-wide signals that are not errors: the small bus studios listen to.

One instance lives on ``AppContext.events``. Emitters are the pages that change shared
state; listeners are the studios:

* ``library_changed`` - a pack was imported, removed, or vanished from disk. Studios
  re-read ``ctx.library.entries()`` to refresh their model pickers.
* ``settings_changed`` - the Settings page saved. Studios re-read ``ctx.settings.load()``
  (the next engine load picks up the provider and threads by itself).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class AppEvents(QObject):
    library_changed = Signal()
    settings_changed = Signal()
