"""The programmatic entry point: ``exporters.export(...)`` and what it is built from.

``python -m exporters`` only parses arguments and calls :func:`export`; scripts, tests and
the app's export command call it the same way. Everything a caller can get wrong (the
modality, the architecture, an option, the precision, the output folder) is refused with
a typed error listing what is supported, before any weights are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from desktop.engines.events import Done, Progress

from .pipeline import ExportConfig, check_out, check_precision, run_export
from .registry import lookup, modality_package
from .errors import UnsupportedOptionError


def open_config(modality: str, source: str | Path, precision: str | None = None, **options: Any) -> ExportConfig:
    """The registered config for ``source``, with its PyTorch model loaded."""
    location = str(source)
    architecture = modality_package(modality).detect_architecture(location)
    config_class = lookup(modality, architecture)
    given = sorted(k for k, v in options.items() if v is not None)
    unknown = [k for k in given if k not in config_class.options]
    if unknown:
        raise UnsupportedOptionError(unknown, architecture, config_class.options)
    if precision is not None:
        check_precision(config_class, precision)  # before loading gigabytes
    chosen = {k: options[k] for k in given}
    return config_class(config_class.load_source(location, architecture, **chosen))


def export_events(
    modality: str, source: str | Path, out: str | Path, precision: str = "fp32", *, name: str | None = None, force: bool = False, **options: Any
) -> Iterator[Progress | Done]:
    """Like :func:`export`, as the pipeline's events (for a progress bar that can cancel)."""
    out = Path(out)
    check_out(out)
    config = open_config(modality, source, precision, **options)
    yield from run_export(config, out, precision, force=force, name=name)


def export(
    modality: str,
    source: str | Path,
    out: str | Path,
    precision: str = "fp32",
    *,
    name: str | None = None,
    force: bool = False,
    progress: Callable[[Progress | Done], None] | None = None,
    **options: Any,
) -> Path:
    """Export ``source`` to a validated pack in ``out``; return the pack folder.

    ``options`` are the family's own (image: ``lora``); ``progress`` receives each step's
    Progress event and the final Done (with the timing). Raises ExportError subclasses (UnsupportedModalityError,
    UnsupportedArchitectureError, UnsupportedOptionError, UnsupportedPrecisionError,
    QualityFloorError...) with a one-line message for a person.
    """
    done = None
    for event in export_events(modality, source, out, precision, name=name, force=force, **options):
        if progress is not None:
            progress(event)
        if isinstance(event, Done):
            done = event
    return Path(done.stats["out"]) if done else Path(out)
