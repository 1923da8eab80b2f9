"""Typed errors shared by engines, the library, the CLI and the UI.

Every error a person can cause carries a message written for that person. The UI and
the CLI show ``str(error)``; they never match on message text, they dispatch on type.
"""

from __future__ import annotations


class AtelierError(Exception):
    """Base of every error Atelier expects and knows how to explain."""

    #: short heading for notifications ("Pack problem", "Bad request", ...)
    title = "Error"


class PackError(AtelierError):
    title = "Model pack problem"


class PackFormatError(PackError):
    """The pack's manifest or files are not in a shape we understand."""


class PackIntegrityError(PackError):
    """A file's bytes do not match the hash the manifest promises."""


class PackNotFoundError(PackError):
    """No pack of that name in the library, and no such folder."""


class UnsafePathError(PackError):
    """A path in a manifest or archive points outside its folder."""


class ImportFormatError(PackError):
    """A folder or archive offered for import is of no format we know."""


class RequestError(AtelierError):
    """A generation request that cannot run as given (empty prompt, bad size...)."""

    title = "Cannot start"


class ContextOverflowError(RequestError):
    """The conversation no longer fits in the model's context window."""


class ProvenanceError(AtelierError):
    """A file's provenance (PNG/WAV/Markdown metadata, watermark) or the audit log
    cannot be read, is malformed, or does not verify."""

    title = "Provenance problem"


class ProviderError(AtelierError):
    title = "Execution provider problem"


class ResourceError(AtelierError):
    """Not enough memory or disk for what was asked."""

    title = "Not enough resources"


class EngineError(AtelierError):
    """The runtime failed while generating; the message says what to try."""

    title = "Generation failed"


class ExportError(AtelierError):
    title = "Export failed"


class UnsupportedArchitectureError(ExportError):
    def __init__(self, architecture: str, supported: list[str], modality: str = ""):
        self.architecture = architecture
        self.supported = sorted(supported)
        what = f" {modality}" if modality else ""
        super().__init__(
            f"Architecture '{architecture}' is not supported for{what} export. "
            f"Supported: {', '.join(self.supported)}."
        )


class QualityFloorError(ExportError):
    """The exported pack is measurably worse than the floor; --force overrides."""


# -- files and the operating system ----------------------------------------------------------
# Ordinary conditions (a full disk, a read-only folder, a missing input) are not bugs: each
# has its own type, and the CLI its own exit code (sysexits.h), so scripts can tell them apart.


class InputFileError(RequestError):
    """An input file or folder is missing, unreadable, or not the kind of thing asked for."""

    title = "Cannot read the input"
    exit_code = 66  # EX_NOINPUT


class InputEncodingError(RequestError):
    """Input text (stdin, a text file) is not valid UTF-8."""

    exit_code = 65  # EX_DATAERR


class OutputFileError(RequestError):
    """The output cannot be written there: a folder, read-only, no permission."""

    title = "Cannot write the output"
    exit_code = 73  # EX_CANTCREAT


class DiskFullError(ResourceError):
    """The disk (or the user's quota) is full."""

    exit_code = 74  # EX_IOERR


class FileSystemError(AtelierError):
    """Any other error the operating system reported for a file (I/O error, too many open files...)."""

    title = "File system problem"
    exit_code = 74  # EX_IOERR
