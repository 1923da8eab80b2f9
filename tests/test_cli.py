"""The command line: same engines, one clear line on errors, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, env=env, input=stdin, timeout=300)


def env_with(home):
    import os

    e = dict(os.environ)
    e["ATELIER_HOME"] = str(home)
    return e


def test_models_import_list_verify_text_remove(tiny_packs, atelier_home):
    env = env_with(atelier_home)
    r = cli("models", "import", str(tiny_packs["gpt2"]), "--name", "tiny", env=env)
    assert r.returncode == 0, r.stderr
    r = cli("models", "list", env=env)
    assert "tiny" in r.stdout and "gpt2" in r.stdout
    r = cli("models", "verify", "tiny", env=env)
    assert r.returncode == 0 and "OK" in r.stdout
    r = cli("text", "--model", "tiny", "--prompt", "Hello", "--max-tokens", "5", "--seed", "1", "--stats", env=env)
    assert r.returncode == 0, r.stderr
    assert "tokens_per_s=" in r.stderr
    r2 = cli("text", "--model", "tiny", "--prompt", "-", "--max-tokens", "5", "--seed", "1", env=env, stdin="Hello")
    assert r2.stdout == r.stdout  # same seed, same text; '-' reads stdin
    r = cli("models", "remove", "tiny", env=env)
    assert r.returncode == 0
    assert "tiny" not in cli("models", "list", env=env).stdout


def test_errors_are_one_line_without_traceback(atelier_home):
    env = env_with(atelier_home)
    for args in (("text", "--model", "nope", "--prompt", "hi"), ("text", "--prompt", "   "), ("models", "verify", "nope"), ("models", "import", "/nonexistent")):
        r = cli(*args, env=env)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, r.stderr


def test_hundred_thousand_character_prompt_is_refused_clearly(tiny_packs, atelier_home):
    env = env_with(atelier_home)
    assert cli("models", "import", str(tiny_packs["llama"]), "--name", "tl", env=env).returncode == 0
    r = cli("text", "--model", "tl", "--prompt", "-", env=env, stdin="word " * 20_000)
    assert r.returncode == 2 and "context window" in r.stderr and "Traceback" not in r.stderr
