"""``self-test``: loads each pack, generates one short output, prints the table, exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from desktop.cli import main as cli_main
from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from tests.speech_helpers import tiny_voice  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_passes_on_tiny_packs_of_every_modality(tiny_packs, tiny_voice, cache_dir, capsys, monkeypatch):
    from tests.tiny_sd import tiny_sd_pack

    monkeypatch.setenv("ATELIER_BUNDLED_PACKS", "")  # only what this test installs
    lib = Library()
    names = {p.modality: p.name for p in (import_path(src, lib) for src in (tiny_packs["llama"], tiny_voice, tiny_sd_pack(cache_dir)))}
    assert cli_main(["self-test"]) == 0
    out = capsys.readouterr().out
    header, _rule, *rows = out.splitlines()[1:6]
    assert header.split()[:4] == ["modality", "pack", "load", "s"]
    speeds = {"text": "tok/s", "speech": "RTF", "image": "/image"}
    for row in rows:
        cells = row.split()
        modality = cells[0]
        assert cells[1] == names[modality]
        assert float(cells[2]) > 0 and float(cells[3]) >= 0  # load s, generate s (a tiny pack may round to 0.00)
        assert speeds[modality] in row and "pass:" in row and " cpu " in row
    assert sorted(row.split()[0] for row in rows) == ["image", "speech", "text"]
    assert "not tested" not in out
    assert out.rstrip().endswith("self-test passed")


def test_self_test_fails_on_a_damaged_pack(tiny_packs, capsys, monkeypatch):
    monkeypatch.setenv("ATELIER_BUNDLED_PACKS", "")
    pack = import_path(tiny_packs["llama"], Library())
    graph = next(p for p in pack.root.iterdir() if p.suffix == ".data" or p.suffix == ".onnx")
    blob = bytearray(graph.read_bytes())
    blob[-1] ^= 0xFF
    graph.write_bytes(bytes(blob))
    assert cli_main(["self-test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: " in out and "SHA-256" in out
    assert "self-test FAILED: 1 of 1" in out


def test_self_test_with_nothing_installed_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("ATELIER_BUNDLED_PACKS", "")
    assert cli_main(["self-test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No models to test") and "Traceback" not in err


def test_dash_dash_self_test_entry_runs_offline(tiny_packs, atelier_home):
    import_path(tiny_packs["llama"], Library())
    env = dict(os.environ, ATELIER_BUNDLED_PACKS="", QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "main.py", "--self-test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test passed" in proc.stdout and "Traceback" not in proc.stderr
