"""Atelier entry point: no arguments opens the window; a subcommand runs the CLI."""

import sys


def main() -> int:
    # First of all, before onnxruntime can load: its native telemetry client only obeys
    # ORT_DISABLE_TELEMETRY in the environment (children inherit it). Imports nothing heavy.
    from desktop.offline.telemetry_switch import switch_off_native_telemetry

    switch_off_native_telemetry()
    # Then telemetry switches off and internet sockets refused for this process
    # (ATELIER_ALLOW_NETWORK=1 opts out, e.g. to export from a hub id).
    from desktop.offline import install_runtime_guard

    opens_window = "--self-test" not in sys.argv and (len(sys.argv) == 1 or sys.argv[1].startswith("-platform"))
    # the window defers importing onnxruntime (its telemetry switch) to the first model load
    install_runtime_guard(runtime_telemetry=not opens_window)
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
