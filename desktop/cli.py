"""Command line: the same engines as the window, for scripting and tests.

Each ``desktop.commands.*`` module registers its subcommands with :func:`command`; this
file only parses, dispatches and turns typed errors into one clear line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable

from desktop import __version__
from desktop.engines.errors import AtelierError

COMMAND_MODULES = ("models", "text", "speech", "image", "export", "selftest", "provenance", "serve")
INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: an untyped error reached the top (a bug, not bad input)
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help: str):
    """Register ``(configure_parser, run)`` for a subcommand; used as a decorator on a
    function that takes the subparser and returns the run function."""

    def deco(configure):
        _COMMANDS[name] = (configure, None, help)  # run filled by configure's return
        return configure

    return deco


def known_commands() -> list[str]:
    _load()
    return sorted(_COMMANDS)


def _load() -> None:
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(f"desktop.commands.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"desktop.commands.{mod}":
                raise


def build_parser() -> argparse.ArgumentParser:
    _load()
    parser = argparse.ArgumentParser(prog="atelier", description="Atelier: private, offline text, image and speech generation.")
    parser.add_argument("--version", action="version", version=f"Atelier {__version__}")
    parser.add_argument("--provider", choices=("auto", "cuda", "directml", "cpu"), help="execution provider (default: auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference (default: all)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(_COMMANDS):
        configure, _, help_text = _COMMANDS[name]
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_run=configure(sp))
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    import os

    if args.provider:
        os.environ["ATELIER_PROVIDER"] = args.provider
    if args.threads:
        os.environ["ATELIER_THREADS"] = str(args.threads)
    try:
        return int(args._run(args) or 0)
    except AtelierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: cancelled.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: unexpected failure ({type(exc).__name__}: {first}). This is a bug in Atelier; please report it.", file=sys.stderr)
        return INTERNAL_ERROR_EXIT
