"""Subcommands of ``python main.py``; each module registers itself with desktop.cli."""

NO_MODEL = {"text": "No text model installed", "speech": "No voice installed", "image": "No image model installed"}


def open_model(modality: str, name: str | None, allow_path: bool = True):
    """Open the engine for ``name`` (or the default pack of ``modality``), and say on
    stderr when it runs on another provider than asked. Shared by text, speak and image.
    A pack of another modality is refused by name before anything is loaded; a folder
    path is accepted only where the user typed it (``allow_path``), never from a file."""
    from desktop.console import err
    from desktop.defaults import default_model
    from desktop.engines.base import open_engine
    from desktop.engines.errors import RequestError
    from desktop.engines.packs.library import Library

    lib = Library()
    name = name or default_model(lib, modality)
    if not name:
        raise RequestError(f"{NO_MODEL[modality]}. Run the set-up command or `models import PATH`.")
    engine = open_engine(lib.load(name, modality=modality, allow_path=allow_path))
    if engine.provider.fell_back:
        err(f"note: {engine.provider.message()}")
    return engine


def text_argument(value: str, flag: str) -> str:
    """``value``, or all of stdin when it is '-', decoded as UTF-8 (with or without a BOM).
    Invalid bytes are the input's fault, so they get a typed error, not a crash."""
    import sys

    from desktop.engines.errors import InputEncodingError

    if value != "-":
        return value
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a StringIO in tests: already text
        return sys.stdin.read()
    data = stream.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputEncodingError(f"{flag} - read bytes from stdin that are not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}). Convert the input to UTF-8.") from None


def check_output_file(out, suffix: str, overwrite: bool = True) -> None:
    """Refuse an ``--out`` that cannot be written before any model loads: a folder, a
    missing or read-only folder, or another file type."""
    import os

    from desktop.engines.errors import OutputFileError, RequestError

    if out.is_dir():
        raise OutputFileError(f"'{out}' is a folder; --out needs a file name, e.g. '{out / ('out' + suffix)}'.")
    if out.suffix.lower() != suffix:
        raise RequestError(f"The output file must end in {suffix} (got '{out.name}').")
    folder = out.parent
    if not folder.exists():
        raise OutputFileError(f"The folder '{folder}' does not exist.")
    if not folder.is_dir():
        raise OutputFileError(f"'{folder}' is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"Cannot write in '{folder}': it is read-only or you lack permission. Choose another folder.")
