"""Command line: the same engines as the window, for scripting and tests.

Each ``desktop.commands.*`` module registers its subcommands with :func:`command`; this
file only parses, dispatches and turns typed errors into one clear line on stderr.

Exit codes: 0 success, 1 "checked, and the answer is no" (verify, audit, self-test),
2 a request or pack that cannot be used, 65 input text that is not UTF-8, 66 a missing
or unreadable input, 71 out of memory, 73 an output that cannot be written there, 74 a full
disk or other I/O failure, 130 cancelled, 70 only for a bug in Atelier. Details (tracebacks, native
libraries' own messages) go to the log file, never to the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable

from desktop import __version__
from desktop.console import error_line, safe_text
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


def _load() -> None:
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(f"desktop.commands.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"desktop.commands.{mod}":
                raise


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one escaped line (it quotes what was typed)."""

    def error(self, message: str):
        error_line(f"{safe_text(message, one_line=True)} (see `{self.prog} --help`)")
        raise SystemExit(2)


def _threads(text: str) -> int:
    from desktop.engines.providers import check_threads

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number (got '{text}')") from None
    try:
        return check_threads(value)
    except AtelierError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    _load()
    parser = _Parser(prog="atelier", description="Atelier: private, offline text, image and speech generation.")
    parser.add_argument("--version", action="version", version=f"Atelier {__version__}")
    parser.add_argument("--provider", choices=("auto", "cuda", "directml", "cpu"), help="execution provider (default: auto)")
    parser.add_argument("--threads", type=_threads, help="CPU threads for inference (default: all; at most 4 per core, 256 in all)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(_COMMANDS):
        configure, _, help_text = _COMMANDS[name]
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_run=configure(sp))
    return parser


def main(argv: list[str] | None = None) -> int:
    from desktop.logfile import native_stderr_to_log, setup_logging

    log_file = setup_logging()
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
    with native_stderr_to_log(log_file):
        return _run(args, log_file)


def _run(args: argparse.Namespace, log_file) -> int:
    log = logging.getLogger(__name__)
    try:
        return int(args._run(args) or 0)
    except AtelierError as exc:
        log.info("%s failed: %s", args.command, exc, exc_info=True)
        error_line(exc)
        return exit_code_of(exc)
    except KeyboardInterrupt:
        error_line("cancelled.")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except OSError as exc:  # a full disk, a read-only folder... : ordinary, not a bug
        from desktop.engines.os_errors import classify_os_error

        log.warning("%s failed", args.command, exc_info=True)
        typed = classify_os_error(exc)
        error_line(typed)
        return typed.exit_code
    except MemoryError:
        log.warning("%s ran out of memory", args.command, exc_info=True)
        error_line("not enough memory for this job. Close other programs or choose a smaller model or size.")
        return 71  # EX_OSERR
    except BaseException as exc:  # noqa: BLE001 - last line of defence (a Rust panic is a BaseException): one line
        if isinstance(exc, SystemExit):
            raise
        log.error("unexpected failure in %s", args.command, exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        where = f" Details: {log_file}" if log_file else ""
        error_line(f"unexpected failure ({type(exc).__name__}: {first}). This is a bug in Atelier; please report it.{where}")
        return INTERNAL_ERROR_EXIT


def exit_code_of(exc: AtelierError) -> int:
    """The error's own exit code; a typed error that is also an OSError (a write helper's
    "could not write") gets the code of its errno, so a full disk is 74 however it is raised."""
    code = getattr(exc, "exit_code", None)
    if code is None and isinstance(exc, OSError) and exc.errno:
        from desktop.engines.os_errors import classify_os_error

        code = classify_os_error(exc).exit_code
    return code or 2


def _quiet_stdout() -> None:
    """After the reader of our stdout went away, Python would complain once more at exit
    while flushing it; point stdout at /dev/null so it does not."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
