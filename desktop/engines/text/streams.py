"""Several independent chats over one loaded text model, decoding at the same time.

A ``TextEngine`` serves one stream at a time: it owns one KV cache and remembers which
tokens it holds, so two threads generating through one engine would corrupt each other.
``fork_engine`` gives another engine over the same loaded weights and session (nothing
is loaded twice) with its own cache, which starts as a copy of the original's, so a fork
taken after a shared system prompt does not read that prompt again. Each fork is used by
one thread at a time; different forks may generate concurrently. With the default
backend of genai packs (``GenaiGraphBackend``) the native calls release the GIL, so the
streams really run in parallel on separate cores.

    engine = TextEngine(pack)
    streams = [fork_engine(engine) for _ in range(4)]   # one per API client, say

Closing a fork frees its cache only; the model lives until every engine using it is gone.
"""

from __future__ import annotations

import copy

from desktop.engines.text.engine import TextEngine


def fork_engine(engine: TextEngine) -> TextEngine:
    """Another stream over ``engine``'s model (see the module docstring)."""
    other = copy.copy(engine)  # tokenizer, template and settings are read-only: shared
    other.backend = engine.backend.fork()
    other._cached_ids = list(engine._cached_ids[: other.backend.cached])
    other.chunks = copy.copy(engine.chunks)
    return other
