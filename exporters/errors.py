"""Typed errors of the programmatic export entry point, each listing what is supported.

They extend the shared ``ExportError`` so the CLI, the app's export command and scripts
report every export failure the same way (one line, no traceback).
"""

from __future__ import annotations

from desktop.engines.errors import ExportError, UnsupportedArchitectureError

__all__ = ["ExportError", "UnsupportedArchitectureError", "UnsupportedModalityError", "UnsupportedOptionError", "UnsupportedPrecisionError"]


class UnsupportedModalityError(ExportError):
    def __init__(self, modality: str, supported: tuple[str, ...]):
        self.modality, self.supported = modality, supported
        super().__init__(f"There is no '{modality}' exporter (choose from {', '.join(supported)}).")


class UnsupportedOptionError(ExportError):
    def __init__(self, options: list[str], architecture: str, supported: tuple[str, ...]):
        self.options, self.architecture, self.supported = options, architecture, supported
        allowed = ", ".join(supported) if supported else "none"
        super().__init__(f"Option(s) {', '.join(options)} do not apply to {architecture} models (options for them: {allowed}).")


class UnsupportedPrecisionError(ExportError):
    def __init__(self, precision: str, supported: tuple[str, ...]):
        self.precision, self.supported = precision, supported
        super().__init__(f"Precision '{precision}' is not available for this model (choose from {', '.join(supported)}).")


class NotOurCheckpointError(ExportError):
    """A PyTorch checkpoint that none of our training recipes wrote (it may be a single-file
    image model, which the checkpoint exporter then reads or refuses)."""
