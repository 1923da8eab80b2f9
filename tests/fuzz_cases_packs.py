"""Fuzz cases for "a pack is data, and the library never holds half a pack".

Same format as tests/fuzz_cases.py (``all_cases(seed) -> list[Case]``; each case builds its
inputs from the tiny text pack and returns the action a user would run). Every action must
end "ok" or "typed"; a pack that loads code, reads an unlisted file or writes outside the
library shows up as an untyped failure or an escape (the runner watches ``canary``).
"""

from __future__ import annotations

import json
import os
import random
import zipfile
from pathlib import Path
from typing import Any, Callable

from tests.fuzz_cases import Action, Case, _all, _cli, _copy_pack, _edit_manifest, _good_png, _import, _load_and_run, _png, _record, _rehash

# Keys a genai_config may not carry (code, files, logs, profiling) and unknown ones.
SESSION_HOOKS: list[tuple[str, Any]] = [
    ("custom_ops_library", "libevil.so"),
    ("custom_ops_library", "../../canary/libevil.so"),
    ("custom_ops_library", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    ("enable_profiling", True),
    ("enable_profiling", "../../canary/trace"),
    ("profile_file_prefix", "../../canary/trace"),
    ("config_entries", {"session.use_env_allocators": "1"}),
    ("config_entries", {"ep.context_file_path": "../../canary/ctx.onnx"}),
    ("log_severity_level", "0"),
    ("optimized_model_filepath", "../../canary/opt.onnx"),
    ("provider_options", [{"cuda": {"trt_engine_cache_path": "../../canary"}}]),
    ("provider_options", [{"qnn": {"backend_path": "libevil.so"}}]),
    ("provider_options", [{"evil": {}}]),
    ("provider_options", "cuda"),
    ("use_env_allocators", True),
]
NAMES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u202a", "\u2066", "\u2069", "\u061c", "\u00ad",
         "\u0000", "\u001b", "\u007f", "\u0085", "\u00a0", "\u2007", "\u3000", "\u2028", "\u2029", "\ue000", "\U000f0000"]
LOOKALIKES = ["tiny-llаma", "TINY-LLAMA", "ｔｉｎｙ-llama", "tiny-llama", "tіny-llama", "tiny-llama\u0301"]


def _genai(pack: Path, change: Callable[[dict], None]) -> None:
    path = pack / "genai_config.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))
    _rehash(pack)


def _load_import_cli(pack: Path) -> Action:
    return _all(_load_and_run(pack), _import(pack), _cli("text", "--model", str(pack), "--prompt", "hi", "--max-tokens", "2"), _cli("models", "verify", str(pack)))


def runtime_config_cases(rng: random.Random) -> list[Case]:
    cases = []

    def add(name: str, change: Callable[[dict], None], extra: Callable[[Path], None] | None = None):
        def build(root: Path, base: Path) -> Action:
            pack = _copy_pack(root, base)
            if extra:
                extra(pack)
            _genai(pack, change)
            return _load_import_cli(pack)

        cases.append(Case(f"packs: genai_config {name}", "manifest", build))

    def lib(pack: Path) -> None:
        (pack / "libevil.so").write_bytes(b"\x7fELF" + bytes(rng.getrandbits(8) for _ in range(64)))

    for key, value in SESSION_HOOKS:
        add(f"session_options.{key}={str(value)[:30]}", lambda c, k=key, v=value: c["model"]["decoder"]["session_options"].__setitem__(k, v), lib)
    for where, key in (("model", "vision"), ("model", "speech"), ("model.decoder", "pipeline"), ("", "engine"), ("search", "callback")):
        def change(c, where=where, key=key):
            target = c
            for part in [p for p in where.split(".") if p]:
                target = target[part]
            target[key] = {"filename": "model.onnx", "session_options": {"custom_ops_library": "libevil.so"}}

        add(f"unknown key {where or 'top'}.{key}", change, lib)
    add("decoder a list", lambda c: c["model"].__setitem__("decoder", [1]))
    add("search value text", lambda c: c["search"].__setitem__("top_k", "../../canary"))
    for name in ("ort_config.json", "config.json", "sub/settings.json"):
        def hook(pack: Path, name=name):
            (pack / name).parent.mkdir(exist_ok=True)
            (pack / name).write_text(json.dumps({"session_options": {"custom_op_library": "libevil.so"}}))

        add(f"hook in {name}", lambda c: None, hook)
    return cases


def file_cases(rng: random.Random) -> list[Case]:
    cases = []

    def add(name: str, make: Callable[[Path, Path], Path]):
        def build(root: Path, base: Path) -> Action:
            return _load_import_cli(make(root, base))

        cases.append(Case(f"packs: {name}", "manifest", build))

    def unlisted(file_name: str, data: bytes, drop_listed: bool = True):
        def make(root: Path, base: Path) -> Path:
            pack = _copy_pack(root, base)
            if drop_listed and (pack / file_name).exists():
                (pack / file_name).unlink()
                _rehash(pack)
            (pack / file_name).write_bytes(data)
            return pack

        return make

    evil = b"PWNED {% for m in messages %}{{ m['content'] }}{% endfor %}"
    add("unlisted chat_template.jinja", unlisted("chat_template.jinja", evil))
    add("unlisted tokenizer_config.json", unlisted("tokenizer_config.json", b'{"chat_template": "PWNED"}'))
    add("unlisted genai_config.json", unlisted("genai_config.json", b'{"model": {"decoder": {"session_options": {"custom_ops_library": "x.so"}}}}'))

    def linked(target: str, file_name: str = "chat_template.jinja", keep_listed: bool = False):
        def make(root: Path, base: Path) -> Path:
            pack = _copy_pack(root, base)
            outside = root / "inputs" / "outside.txt"
            outside.write_bytes(evil)
            path = pack / file_name
            if path.exists():
                real = pack / f"{file_name}.real"
                path.rename(real)
                if not keep_listed:
                    _rehash(pack)
            path.symlink_to(outside if target == "outside" else pack / f"{file_name}.real")
            return pack

        return make

    add("template symlink outside the pack", linked("outside"))
    add("listed template is a symlink inside the pack", linked("inside", keep_listed=True))
    add("listed tokenizer is a symlink outside", linked("outside", "tokenizer.json", keep_listed=True))

    def fifo(root: Path, base: Path) -> Path:
        pack = _copy_pack(root, base)
        os.mkfifo(pack / "chat_template.jinja.pipe")
        return pack

    add("named pipe beside the listed files", fifo)
    return cases


def name_cases(rng: random.Random) -> list[Case]:
    cases = []
    for ch in NAMES:
        def build(root: Path, base: Path, ch=ch) -> Action:
            pack = _copy_pack(root, base)
            _edit_manifest(pack, lambda m: m.__setitem__("name", "tiny" + ch + "-llama"))
            return _all(_import(pack), _import(base, name="tiny" + ch + "-llama"), _load_and_run(pack))

        cases.append(Case(f"packs: name with U+{ord(ch):04X}", "import", build))
    for other in LOOKALIKES:
        def build(root: Path, base: Path, other=other) -> Action:
            def both():
                _import(base, name="tiny-llama")()
                _import(base, name=other)()

            return _all(both, _cli("text", "--model", "tiny-llama", "--prompt", "hi", "--max-tokens", "2"))

        cases.append(Case(f"packs: look-alike name {other!r}", "import", build))
    return cases


def import_cases(rng: random.Random) -> list[Case]:
    cases = []

    def add(name: str, make: Callable[[Path, Path], Path]):
        def build(root: Path, base: Path) -> Action:
            target = make(root, base)
            return _all(_import(target), _cli("models", "import", str(target)))

        cases.append(Case(f"packs: import {name}", "import", build))

    def zipped(entries: list[tuple[str, bytes]]):
        def make(root: Path, base: Path) -> Path:
            path = root / "inputs" / "p.zip"
            with zipfile.ZipFile(path, "w") as zf:
                for n, d in entries:
                    zf.writestr(n, d)
            return path

        return make

    add("zip with X and X/inner", zipped([("p/X", b"a"), ("p/X/inner", b"b")]))
    add("zip with X/inner then X", zipped([("p/X/inner", b"b"), ("p/X", b"a")]))
    add("zip 700 levels deep", zipped([("/".join(["d"] * 700) + "/x", b"x")]))
    add("zip 40 levels deep", zipped([("/".join(["d"] * 40) + "/x", b"x")]))

    def deep(levels: int):
        def make(root: Path, base: Path) -> Path:
            folder = root / "inputs" / "deep"
            leaf = folder.joinpath(*["d"] * levels)
            leaf.mkdir(parents=True)
            (folder / "genai_config.json").write_text("{}")
            (folder / "tokenizer.json").write_text("{}")
            (leaf / "x.bin").write_bytes(b"x")
            return folder

        return make

    add("folder 700 levels deep", deep(700))
    add("folder 40 levels deep", deep(40))

    def half_pack_in_library(root: Path, base: Path) -> Path:
        from desktop.engines.packs.library import Library

        lib = Library()
        half = lib.root / "tiny-llama"
        _copy_pack(root, base, "half")
        (root / "inputs" / "half").rename(half)
        (half / "model.onnx").unlink()
        return base  # importing the genuine pack next to a half one must be typed or work

    add("next to a half pack", half_pack_in_library)
    return cases


def reproduce_cases(rng: random.Random) -> list[Case]:
    cases = []
    for pack_field in ("{inputs}/pack", "../../canary", "/", "tiny-llama", ""):
        def build(root: Path, base: Path, pack_field=pack_field) -> Action:
            _copy_pack(root, base)
            png = _png(root, "r.png", _good_png(_record(pack=pack_field.replace("{inputs}", str(root / "inputs")))))
            return _cli("image", "--reproduce", str(png), "--out", str(root / "out" / "again.png"))

        cases.append(Case(f"packs: reproduce record names pack {pack_field!r}", "file", build))
    return cases


def all_cases(seed: int = 5) -> list[Case]:
    rng = random.Random(seed)
    return runtime_config_cases(rng) + file_cases(rng) + name_cases(rng) + import_cases(rng) + reproduce_cases(rng)
