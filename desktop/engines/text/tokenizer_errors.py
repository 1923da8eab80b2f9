"""Failures inside the Rust ``tokenizers`` library, as typed errors.

Its errors are plain ``Exception``s, and its panics (a hostile regex, a corrupt
normalizer map) arrive as ``pyo3_runtime.PanicException``, which derives from
BaseException and slips past every ``except Exception`` up to the top of a worker
thread or the CLI. A tokenizer is part of a pack, so either is the pack's fault.
"""

from __future__ import annotations

from desktop.engines.errors import PackFormatError


def tokenizer_failure(exc: BaseException, what: str) -> PackFormatError:
    """The typed error for ``exc`` raised by tokenizers; interrupts and exits are
    re-raised untouched (catch BaseException, then call this)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc
    if isinstance(exc, MemoryError):
        return PackFormatError(f"{what}: it ran out of memory.")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return PackFormatError(f"{what}: {first}")
