"""Fuzz cases for bounded work and one-line failures, in the format of tests/fuzz_cases.py.

Hostile chat templates (time and size bombs), tokenizers that panic or fail, config and
thread numbers out of bounds, ordinary OS failures (stdin not UTF-8, ``--out`` a folder,
missing inputs) and control characters in what the CLI prints. Each case builds its
inputs under ``root/inputs`` from the tiny text pack and returns the action; an action
passes by returning or raising a typed AtelierError, and fails with an untyped exception
(which the harness reports) when the CLI exits 70, prints a traceback, more than one
error line, or a raw control character.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Callable

from tests.fuzz_cases import Action, Case, CliUntyped, _all, _load_and_run, _rehash

RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\r")

TEMPLATES = {
    "nested range loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "recursive loop": "{% for x in range(99999) recursive %}{{ loop(range(99999)) }}{% endfor %}",
    "string times 10^10": "{{ 'x' * 10**10 }}",
    "power tower": "{{ 2 ** (10**10) }}",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "printing 10 GB": "{% set s = 'x' * 99999 %}{% for i in range(99999) %}{{ s }}{% endfor %}",
    "filter block 10 GB": "{% set s = 'x' * 99999 %}{% filter upper %}{% for i in range(99999) %}{{ s }}{% endfor %}{% endfilter %}",
    "ljust 10^10": "{{ 'x'.ljust(10**10) }}",
    "center filter 10^10": "{{ 'x' | center(10**10) }}",
    "printf width": "{{ '%0999999999d' % 1 }}",
    "format width": "{{ '{:>{}}'.format(1, 10**10) }}",
    "format filter (compile-time fold)": "{{ '%0999999999d' | format(1) }}",
    "replace amplification": "{% set ns = namespace(s='x' * 1000) %}{% for i in range(9) %}{% set ns.s = ns.s | replace('x', ns.s) %}{% endfor %}",
    "join of big parts": "{{ range(99999) | map('string') | map('center', 99999) | join }}",
    "self-nested list printed": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "tojson indent 10^9": "{{ messages | tojson(indent=10**9) }}",
    "sandbox escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
}


def _panic_normalizer(tok: dict) -> None:
    tok["normalizer"] = {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(b"\xff\xff\xff\x7f" + b"\x01" * 20).decode()}


def _bad_regex(tok: dict) -> None:
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(?<=\\xc3)"}, "behavior": "Isolated", "invert": False}


def _encode_fails(tok: dict) -> None:
    tok["model"] = {"type": "Unigram", "unk_id": None, "vocab": [["<|im_start|>", 0.0], ["<|im_end|>", 0.0]], "byte_fallback": False}
    tok["pre_tokenizer"] = tok["decoder"] = tok["post_processor"] = None
    tok["added_tokens"] = []


def _escaping_decoder(tok: dict) -> None:
    tok["decoder"] = {"type": "Sequence", "decoders": [tok["decoder"], {"type": "Replace", "pattern": {"String": "e"}, "content": "\x1b[2J\u202e"}]}


TOKENIZERS = {"panic while loading": _panic_normalizer, "invalid regex": _bad_regex, "fails on encode": _encode_fails}


# -- actions -------------------------------------------------------------------------------
def _cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, check_stdout: bool = True) -> Action:
    """Run the CLI in-process like tests/fuzz_cases._cli, but argparse's own exit (a usage
    error) counts as an exit code, and stdout/stderr must be free of raw controls."""

    def run():
        from desktop.cli import INTERNAL_ERROR_EXIT, main

        out, err = io.StringIO(), io.StringIO()
        saved_env = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        saved_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
        finally:
            sys.stdin = saved_stdin
            for k, v in saved_env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        text = err.getvalue()
        name = " ".join(a[:20] for a in args[:2])
        if code == INTERNAL_ERROR_EXIT or "Traceback" in text:
            raise CliUntyped(f"`{name}` exited {code}: {text.strip()[:300]}")
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        if code not in (0, 1) and len(errors) != 1:
            raise CliUntyped(f"`{name}` exited {code} without exactly one error line: {text[:300]!r}")
        shown = text + (out.getvalue() if check_stdout else "")
        if any(c in shown for c in RAW_CONTROLS):
            raise CliUntyped(f"`{name}` printed a raw control character: {shown[:200]!r}")
        return code

    return run


# -- helpers -------------------------------------------------------------------------------
def _copy(root: Path, base: Path, name: str) -> Path:
    dest = root / "inputs" / name
    shutil.copytree(base, dest)
    return dest


def _with_template(source: str):
    def make(root: Path, base: Path) -> Path:
        pack = _copy(root, base, "tpl")
        (pack / "chat_template.jinja").write_text(source, encoding="utf-8")
        _rehash(pack)
        return pack

    return make


def _with_tokenizer(change: Callable[[dict], None]):
    def make(root: Path, base: Path) -> Path:
        pack = _copy(root, base, "tok")
        tok = json.loads((pack / "tokenizer.json").read_text(encoding="utf-8"))
        change(tok)
        (pack / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
        _rehash(pack)
        return pack

    return make


def _with_manifest(change: Callable[[dict], None]):
    def make(root: Path, base: Path) -> Path:
        pack = _copy(root, base, "man")
        manifest = json.loads((pack / "manifest.json").read_text())
        change(manifest)
        (pack / "manifest.json").write_text(json.dumps(manifest))
        return pack

    return make


def _text(pack: Path, *extra: str) -> Action:
    return _cli("text", "--model", str(pack), "--prompt", "hi", "--max-tokens", "2", *extra)


# -- cases ---------------------------------------------------------------------------------
def template_cases(rng: random.Random) -> list[Case]:
    cases = []
    for label, source in TEMPLATES.items():
        def build(root: Path, base: Path, source=source) -> Action:
            pack = _with_template(source)(root, base)
            return _all(_load_and_run(pack), _text(pack))

        cases.append(Case(f"template: {label}", "template", build))
    return cases


def tokenizer_cases(rng: random.Random) -> list[Case]:
    cases = []
    for label, change in TOKENIZERS.items():
        def build(root: Path, base: Path, change=change) -> Action:
            pack = _with_tokenizer(change)(root, base)
            return _all(_load_and_run(pack), _text(pack))

        cases.append(Case(f"tokenizer: {label}", "tokenizer", build))
    return cases


def limit_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, build: Callable[[Path, Path], Action]):
        cases.append(Case(f"limits: {name}", "limits", build))

    for threads in ("500", "100000", "-1", "lots"):
        add(f"--threads {threads}", lambda r, b, t=threads: _cli("--threads", t, "text", "--model", str(b), "--prompt", "hi", "--max-tokens", "1"))
        add(f"ATELIER_THREADS={threads}", lambda r, b, t=threads: _cli("text", "--model", str(b), "--prompt", "hi", "--max-tokens", "1", env={"ATELIER_THREADS": t}))
    add("manifest context_length 10^15", lambda r, b: _load_and_run(_with_manifest(lambda m: m.update(context_length=10**15))(r, b)))
    add("manifest estimated RAM 10^18", lambda r, b: _load_and_run(_with_manifest(lambda m: m.setdefault("config", {}).update(estimated_ram_bytes=10**18))(r, b)))
    return cases


def os_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, build: Callable[[Path, Path], Action]):
        cases.append(Case(f"os: {name}", "os", build))

    for label, data in {"UTF-16 BOM": b"\xff\xfehi", "Latin-1": b"caf\xe9", "lone surrogate": b"\xed\xa0\x80", "random bytes": bytes(rng.getrandbits(8) for _ in range(64)) + b"\xff"}.items():
        add(f"text stdin {label}", lambda r, b, d=data: _cli("text", "--model", str(b), "--prompt", "-", stdin=d))
        add(f"speak stdin {label}", lambda r, b, d=data: _cli("speak", "--text", "-", "--out", str(r / "out" / "a.wav"), stdin=d))
        add(f"image stdin {label}", lambda r, b, d=data: _cli("image", "--prompt", "-", "--out", str(r / "out" / "a.png"), stdin=d))

    def folder(r: Path, name: str) -> Path:
        (r / "out" / name).mkdir(parents=True, exist_ok=True)
        return r / "out" / name

    add("speak --out a folder", lambda r, b: _cli("speak", "--text", "hi", "--out", str(folder(r, "x.wav"))))
    add("image --out a folder", lambda r, b: _cli("image", "--prompt", "hi", "--out", str(folder(r, "x.png"))))
    add("speak --out in a missing folder", lambda r, b: _cli("speak", "--text", "hi", "--out", str(r / "out" / "no" / "a.wav")))
    add("image --init missing", lambda r, b: _cli("image", "--prompt", "x", "--out", str(r / "out" / "a.png"), "--init", str(r / "inputs" / "nope.png")))
    add("image --init a folder", lambda r, b: _cli("image", "--prompt", "x", "--out", str(r / "out" / "a.png"), "--init", str(r / "inputs")))
    add("verify a folder", lambda r, b: _cli("verify", str(r / "inputs")))
    add("verify missing", lambda r, b: _cli("verify", str(r / "inputs" / "missing.png")))
    return cases


def escape_cases(rng: random.Random) -> list[Case]:
    evil = "\x1b[2J\x1b]0;t\x07\u202e\x9b31m\rx"
    cases: list[Case] = []

    def add(name: str, build: Callable[[Path, Path], Action]):
        cases.append(Case(f"escape: {name}", "escape", build))

    add("model output with ESC", lambda r, b: _cli("text", "--model", str(_with_tokenizer(_escaping_decoder)(r, b)), "--prompt", "hello", "--max-tokens", "40", "--seed", "3", "--temperature", "1.5"))
    add("licence id with ESC", lambda r, b: _all(_cli("models", "import", str(_with_manifest(lambda m: m.update(license={"id": evil}))(r, b)), "--name", "esc"), _cli("models", "list")))
    add("model name with ESC", lambda r, b: _cli("text", "--model", evil, "--prompt", "hi"))
    add("provider with ESC", lambda r, b: _cli("--provider", evil, "text", "--prompt", "hi"))

    def png(r: Path, b: Path) -> Action:
        import numpy as np

        from desktop.outputs.provenance_png import save_png

        rec = {"generator": "Atelier", "kind": "image", "pack": evil, "pack_sha256": "ab" * 32, "note": evil, "app_version": evil}
        path = save_png(r / "inputs" / "e.png", np.full((96, 96, 3), 90, np.uint8), rec, watermark=False)
        return _all(_cli("verify", str(path)), _cli("verify", str(path), "--json"))

    add("PNG record with ESC", png)
    return cases


def all_cases(seed: int = 11) -> list[Case]:
    rng = random.Random(seed)
    return template_cases(rng) + tokenizer_cases(rng) + limit_cases(rng) + os_cases(rng) + escape_cases(rng)
