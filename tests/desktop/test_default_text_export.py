"""The default text model is exported by ``python -m exporters`` in a child process: the
app's own process never imports the exporters (nor torch), and a failed export reaches
the user as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from desktop import defaults
from desktop.engines.errors import ExportError
from desktop.engines.packs.library import Library

ROOT = Path(__file__).resolve().parents[2]

INSTALL = """
import sys
from pathlib import Path
from desktop import defaults
from desktop.engines.packs.library import Library
defaults.smollm2_gguf = lambda: Path(sys.argv[1])
defaults.TEXT_PRECISION = "fp32"
defaults.install_text(Library())
print("imported:", sorted(m for m in ("exporters", "torch", "transformers") if m in sys.modules))
"""


@pytest.mark.slow
def test_install_text_exports_in_a_child_process(tmp_path, atelier_home):
    from desktop.engines.packs.pack import load_pack
    from tests.tiny_models import tiny_hf_model

    src = tiny_hf_model("llama", tmp_path / "hf")
    proc = subprocess.run([sys.executable, "-c", INSTALL, str(src)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "imported: []" in proc.stdout
    assert "text: " in proc.stdout and "Validating the fp32 graph" in proc.stdout
    pack = load_pack(Library().find(defaults.TEXT_PACK))
    assert pack.name == defaults.TEXT_PACK and pack.manifest["validation"]["passed_floor"]


def test_a_failed_default_export_is_one_line(tmp_path, monkeypatch):
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    monkeypatch.setattr(defaults, "smollm2_gguf", lambda: not_a_model)
    lines: list[str] = []
    with pytest.raises(ExportError) as info:
        defaults.install_text(Library(), log=lines.append)
    message = str(info.value)
    assert "\n" not in message and "has no config.json" in message and "Traceback" not in message
    assert not any(e.name == defaults.TEXT_PACK for e in Library().entries())
