"""Atelier entry point: no arguments opens the window; a subcommand runs the CLI."""

import sys


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] not in ("--self-test",) and not sys.argv[1].startswith("-platform"):
        from desktop.cli import main as cli_main

        return cli_main(sys.argv[1:])
    if "--self-test" in sys.argv:
        from desktop.cli import main as cli_main

        return cli_main(["self-test"])
    from desktop.app import run

    return run(sys.argv)


if __name__ == "__main__":
    sys.exit(main())
