"""Subcommands of ``python main.py``; each module registers itself with desktop.cli."""

NO_MODEL = {"text": "No text model installed", "speech": "No voice installed", "image": "No image model installed"}


def open_model(modality: str, name: str | None, allow_path: bool = True):
    """Open the engine for ``name`` (or the default pack of ``modality``), and say on
    stderr when it runs on another provider than asked. Shared by text, speak and image.
    A pack of another modality is refused by name before anything is loaded; a folder
    path is accepted only where the user typed it (``allow_path``), never from a file."""
    import sys

    from desktop.defaults import default_model
    from desktop.engines.base import open_engine
    from desktop.engines.errors import RequestError
    from desktop.engines.library import Library

    lib = Library()
    name = name or default_model(lib, modality)
    if not name:
        raise RequestError(f"{NO_MODEL[modality]}. Run the set-up command or `models import PATH`.")
    engine = open_engine(lib.load(name, modality=modality, allow_path=allow_path))
    if engine.provider.fell_back:
        print(f"note: {engine.provider.message()}", file=sys.stderr)
    return engine
