"""Nothing the CLI prints can drive the terminal: control characters (C0 but newline and
tab, DEL, C1, ESC) and bidi controls from model output, manifests and file records are
shown as visible escapes. Model text keeps its newlines. Real ``main.py`` subprocesses."""

from __future__ import annotations

import json
import shutil

import pytest

from desktop.console import safe_text
from tests.test_cli import cli, env_with
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

EVIL = "\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\x9b31m\rover\x00\u2066"


def assert_inert(text: str) -> None:
    for ch in ("\x1b", "\x07", "\u202e", "\x9b", "\r", "\x00", "\u2066"):
        assert ch not in text, repr(text)


def test_safe_text_escapes_every_class_and_keeps_newlines_only_when_asked():
    shown = safe_text("a\nb\tc" + EVIL)
    assert_inert(shown)
    assert shown.startswith("a\nb\tc") and "\\x1b[2J" in shown and "\\u202e" in shown and "\\x9b" in shown
    one = safe_text("line one\nline two\u2028x", one_line=True)
    assert "\n" not in one and "\\x0a" in one and "\\u2028" in one
    assert safe_text("naïve café 日本 🎨") == "naïve café 日本 🎨"  # ordinary text is untouched


def _hostile_pack(base, dest):
    """The tiny pack with control characters in its manifest and in its decoder's output:
    every 'e' the model writes decodes as an ESC sequence."""
    from tests.fuzz_cases import _rehash

    shutil.copytree(base, dest)
    tok = json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))
    tok["decoder"] = {"type": "Sequence", "decoders": [tok["decoder"], {"type": "Replace", "pattern": {"String": "e"}, "content": "\x1b[31m\u202e\n"}]}
    (dest / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    _rehash(dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["license"] = {"id": "mit" + EVIL}
    manifest["description"] = EVIL
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_model_output_is_escaped_but_keeps_newlines(tiny_text_pack, tmp_path, atelier_home):  # noqa: F811
    pack = _hostile_pack(tiny_text_pack, tmp_path / "evil")
    r = cli("text", "--model", str(pack), "--prompt", "Tell me more", "--max-tokens", "120", "--seed", "3", "--temperature", "1.5", env=env_with(atelier_home))
    assert r.returncode == 0, r.stderr
    assert_inert(r.stdout)
    assert "\\x1b[31m" in r.stdout and "\\u202e" in r.stdout  # the model's ESC reached us, made visible
    assert r.stdout.count("\n") > 1  # newlines of the reply survive


def test_manifest_fields_are_escaped_in_models_list(tiny_text_pack, tmp_path, atelier_home):  # noqa: F811
    env = env_with(atelier_home)
    pack = _hostile_pack(tiny_text_pack, tmp_path / "evil")
    assert cli("models", "import", str(pack), "--name", "evil", env=env).returncode == 0
    r = cli("models", "list", env=env)
    assert r.returncode == 0, r.stderr
    assert_inert(r.stdout)
    assert "\\x1b[2J" in r.stdout and r.stdout.count("\n") == 1  # one row: no line faked by a newline


def test_file_records_are_escaped_in_verify(tmp_path, atelier_home):
    import numpy as np

    from desktop.outputs.provenance_png import save_png
    from desktop.outputs.provenance_wav import save_wav

    record = {"generator": "Atelier", "app_version": "0.1" + EVIL, "kind": "image", "pack": "p" + EVIL, "pack_sha256": "ab" * 32, "seed": 1,
              "note": "AI-generated" + EVIL, "settings": {"prompt": EVIL}}
    png = save_png(tmp_path / "a.png", np.full((96, 96, 3), 120, np.uint8), record)
    wav = save_wav(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000, dict(record, kind="speech"), text=EVIL)
    for path in (png, wav):
        for extra in ((), ("--json",)):
            r = cli("verify", str(path), *extra, env=env_with(atelier_home))
            assert r.returncode in (0, 1), r.stderr
            assert_inert(r.stdout + r.stderr)
            assert "made by Atelier" in r.stdout or "generator" in r.stdout


def test_typed_errors_and_usage_errors_are_escaped(atelier_home):
    env = env_with(atelier_home)
    evil = EVIL.replace("\x00", "")  # a command line cannot carry NUL
    for args in (("models", "verify", evil), ("text", "--model", evil, "--prompt", "hi"), ("--provider", evil, "text"), ("speak", "--text", "x", "--out", evil)):
        r = cli(*args, env=env)
        assert r.returncode == 2, r.stderr
        assert_inert(r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_printing_never_fails_on_a_narrow_terminal_encoding(stream, atelier_home):
    import subprocess
    import sys

    from tests.test_cli import ROOT

    code = f"from desktop.console import out, err; {'out' if stream == 'stdout' else 'err'}('caf\\u00e9 \\U0001f3a8 \\x1b')"
    env = env_with(atelier_home)
    env["PYTHONIOENCODING"] = "ascii"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "\\x1b" in getattr(r, stream)
