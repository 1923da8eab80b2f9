"""``self-test`` (also ``Atelier --self-test``): one short output per installed default
pack, a table of timings, exit 0 only if every pack passed."""

from __future__ import annotations

from pathlib import Path

from desktop.cli import command
from desktop.console import err, out, out_block
from desktop.engines.errors import RequestError


@command("self-test", "load each default model, make one short output per modality offline, print timings")
def configure(p):
    p.add_argument("--pack", action="append", default=[], metavar="NAME_OR_DIR", help="test this pack instead of the defaults (repeatable)")
    return run


def run(args) -> int:
    from desktop import selftest
    from desktop.engines.packs.library import Library
    from desktop.engines.packs.pack import MODALITIES
    from desktop.system_info import collect

    lib = Library()
    packs = [Path(lib.find(name, allow_path=True)) for name in args.pack] if args.pack else selftest.default_packs(lib)
    if not packs:
        raise RequestError("No models to test: none are installed and none ship with this build. Run the set-up or import a model.")
    info = collect(with_runtime=True)
    out(f"Atelier self-test - {info.cpu_name}, {info.cpu_cores} cores; onnxruntime providers: {', '.join(info.providers)}", flush=True)
    rows = []
    for row in selftest.run(packs):
        rows.append(row)
        err(f"  {row.modality}: {'ok' if row.ok else 'FAILED'}")
    out_block(selftest.table(rows))
    missing = [m for m in MODALITIES if m not in {r.modality for r in rows}]
    if missing:
        out(f"not tested (no pack installed): {', '.join(missing)}")
    failed = [r for r in rows if not r.ok]
    out("self-test passed" if not failed else f"self-test FAILED: {len(failed)} of {len(rows)}")
    return 1 if failed else 0
