"""``python main.py serve`` as a user runs it: the offline network guard is on, the
server listens on 127.0.0.1 and answers the openai client; a non-loopback address
without a key is refused before anything listens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict:
    env = dict(os.environ, ATELIER_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("ATELIER_ALLOW_NETWORK", None)  # the guard must be on, as for a user
    return env


def test_serve_under_the_network_guard_answers_the_openai_client(api_library, tmp_path):
    home = tmp_path / "home"
    (home).mkdir()
    (home / "models").symlink_to(api_library, target_is_directory=True)
    proc = subprocess.Popen([sys.executable, "main.py", "serve", "--port", "0"], cwd=ROOT, env=_env(home), stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "Serving" in line or not line:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert match, line
        with openai.OpenAI(base_url=match.group(0), api_key="x", max_retries=0, timeout=60) as client:
            reply = client.chat.completions.create(model="tiny-llama-fp32", messages=[{"role": "user", "content": "hi"}], max_tokens=4, extra_body={"ignore_eos": True})  # a random model may end at once
            assert reply.usage.completion_tokens == 4
    finally:
        proc.terminate()
        proc.wait(30)


def test_serve_on_all_addresses_without_key_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "main.py", "serve", "--host", "0.0.0.0", "--port", "0"], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "without an API key" in r.stderr and "Traceback" not in r.stderr
