"""Generated malformed packs and inputs for the robustness fuzz test.

Each case builds its inputs under ``root/inputs`` from the tiny text pack (a real export)
and returns the *action*: the loaders, engines and CLI commands a user would run on it.
Pack cases rewrite the manifest's hashes after corrupting a file, so the damage reaches
the deeper checks (ONNX structure, external data, runtime) instead of stopping at the
hash check. Deterministic: the same seed gives the same cases.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

Action = Callable[[], Any]


@dataclass
class Case:
    name: str
    category: str
    build: Callable[[Path, Path], Action]  # (root, tiny pack) -> action


# -- actions -------------------------------------------------------------------------------
def _cli(*args: str) -> Action:
    def run():
        import contextlib
        import io

        from desktop.cli import INTERNAL_ERROR_EXIT, main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        text = err.getvalue()
        if code == INTERNAL_ERROR_EXIT or "Traceback" in text:
            raise CliUntyped(f"`{' '.join(args[:2])}` exited {code}: {text.strip()[:300]}")
        if code not in (0, 1) and not text.startswith("error: "):
            raise CliUntyped(f"`{' '.join(args[:2])}` exited {code} without a one-line error: {text[:300]}")
        return code

    return run


class CliUntyped(Exception):
    """The CLI let an untyped error through (exit 70 or a traceback)."""


def _load_and_run(pack_dir: Path, tokens: int = 3) -> Action:
    """Load the pack as the app does, open its engine, generate a few tokens."""

    def run():
        from desktop.engines.base import open_engine
        from desktop.engines.packs.pack import load_pack
        from desktop.engines.text.sampling import SamplingSettings
        from desktop.engines.text.engine import ChatRequest

        engine = open_engine(load_pack(pack_dir))
        try:
            return sum(1 for _ in engine.generate(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=tokens, sampling=SamplingSettings(seed=0))))
        finally:
            engine.close()

    return run


def _all(*actions: Action) -> Action:
    """Run every action; raise the first failure after trying them all."""

    def run():
        first = None
        for action in actions:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised for the harness
                if first is None or (_typed(first) and not _typed(exc)):
                    first = exc
        if first is not None:
            raise first

    return run


def _typed(exc: BaseException) -> bool:
    from desktop.engines.errors import AtelierError

    return isinstance(exc, AtelierError)


def _import(path: Path, name: str | None = None) -> Action:
    def run():
        from desktop.engines.packs.importers import import_path
        from desktop.engines.packs.library import Library

        return import_path(path, Library(), name=name)

    return run


# -- helpers -------------------------------------------------------------------------------
def _copy_pack(root: Path, base: Path, name: str = "pack") -> Path:
    dest = root / "inputs" / name
    shutil.copytree(base, dest)
    return dest


def _rehash(pack: Path) -> None:
    """Rewrite the manifest's file list so hashes match the (corrupted) files."""
    from desktop.engines.packs.pack import describe_files

    manifest = json.loads((pack / "manifest.json").read_text())
    roles = {f["path"]: f.get("role", "") for f in manifest["files"]}
    manifest["files"] = describe_files(pack, roles)
    (pack / "manifest.json").write_text(json.dumps(manifest))


def _edit_manifest(pack: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    change(manifest)
    (pack / "manifest.json").write_text(json.dumps(manifest))


def _edit_onnx(pack: Path, change: Callable[[Any], None]) -> None:
    import onnx

    model = onnx.load(str(pack / "model.onnx"), load_external_data=False)
    change(model)
    (pack / "model.onnx").write_bytes(model.SerializeToString())
    _rehash(pack)


def _set_external(key: str, value: str, index: int = 0):
    def change(model):
        t = model.graph.initializer[index]
        for e in t.external_data:
            if e.key == key:
                e.value = value
                return
        t.external_data.add(key=key, value=value)

    return change


def _zip(path: Path, entries: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    return path


def _pack_entries(base: Path, prefix: str = "tiny/") -> list[tuple[str, bytes]]:
    return [(prefix + f.name, f.read_bytes()) for f in sorted(base.iterdir()) if f.is_file()]


def _png(root: Path, name: str, data: bytes) -> Path:
    path = root / "inputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _good_png(record_text: str | None = None, size: int = 96) -> bytes:
    import io

    import numpy as np
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from desktop.provenance_png import RECORD_KEY

    info = PngInfo()
    if record_text is not None:
        info.add_itxt(RECORD_KEY, record_text)
    buf = io.BytesIO()
    rng = np.random.default_rng(size)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _record(**changes) -> str:
    rec = {"generator": "Atelier", "app_version": "0.1.0", "kind": "image", "pack": "p", "pack_sha256": "ab" * 32, "seed": 1,
           "settings": {"prompt": "x", "width": 64, "height": 64, "steps": 4, "seed": 1}, "note": "AI-generated with Atelier"}
    rec.update(changes)
    return json.dumps(rec)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _file_actions(path: Path) -> Action:
    """Everything that reads a file a user hands us: verify, provenance, reproduce."""

    def reproduce():
        from desktop.image_meta import read_settings

        return read_settings(path)

    def provenance():
        from desktop.provenance import read_file_provenance

        return read_file_provenance(path)

    def inspect():
        from desktop.commands.provenance import inspect_file

        return inspect_file(path)

    return _all(provenance, inspect, reproduce, _cli("verify", str(path)))


# -- case families ---------------------------------------------------------------------------
REQUIRED = ("format", "schema_version", "name", "modality", "architecture", "runtime", "precision", "files")
WRONG_VALUES = (None, 7, -1, 10**30, "x", "", [], {}, True, 3.5, ["a"], {"a": 1})
TRAVERSALS = ("../escaped.onnx", "../../canary/escaped", "/etc/passwd", "a/../../x", "C:\\evil.onnx", "..\\..\\canary\\x", "model.onnx\0.txt", "x" * 5000, "", ".")


def manifest_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, change: Callable[[dict], None]):
        def build(root: Path, base: Path) -> Action:
            pack = _copy_pack(root, base)
            _edit_manifest(pack, change)
            return _all(_load_and_run(pack), _cli("models", "verify", str(pack)), _cli("models", "import", str(pack), "--name", "fuzz"))

        cases.append(Case(f"manifest: {name}", "manifest", build))

    for key in REQUIRED:
        add(f"missing {key}", lambda m, k=key: m.pop(k))
    fields = ("format", "schema_version", "name", "modality", "architecture", "runtime", "precision", "files", "io", "config", "context_length", "license", "source", "model_card", "validation", "created", "exporter")
    for key in fields:
        value = rng.choice(WRONG_VALUES)
        add(f"{key} = {value!r:.40}", lambda m, k=key, v=value: m.__setitem__(k, v))
    for bad in TRAVERSALS:
        add(f"file path {bad[:30]!r}", lambda m, b=bad: m["files"][0].__setitem__("path", b))
    file_changes = {
        "sha256 short": ("sha256", "abc"),
        "sha256 uppercase": ("sha256", "A" * 64),
        "bytes negative": ("bytes", -5),
        "bytes huge": ("bytes", 10**18),
        "bytes text": ("bytes", "100"),
        "bytes bool": ("bytes", True),
        "role number": ("role", 5),
    }
    for label, (k, v) in file_changes.items():
        add(label, lambda m, k=k, v=v: m["files"][0].__setitem__(k, v))
    add("duplicate file entry", lambda m: m["files"].append(dict(m["files"][0])))
    add("files entry not an object", lambda m: m["files"].append("model.onnx"))
    add("20k files", lambda m: m.__setitem__("files", [dict(m["files"][0], path=f"f{i}") for i in range(20_000)]))
    add("schema version 2", lambda m: m.__setitem__("schema_version", 2))
    add("modality smell", lambda m: m.__setitem__("modality", "smell"))
    add("precision int3", lambda m: m.__setitem__("precision", "int3"))
    add("runtime unknown", lambda m: m.__setitem__("runtime", "tensorflow"))
    add("name with newline", lambda m: m.__setitem__("name", "a\nb"))
    add("context length 0", lambda m: m.__setitem__("context_length", 0))
    add("context length huge", lambda m: m.__setitem__("context_length", 10**12))
    add("estimated RAM huge", lambda m: m["config"].__setitem__("estimated_ram_bytes", 10**15))
    add("estimated RAM negative", lambda m: m["config"].__setitem__("estimated_ram_bytes", -1))
    add("eos token id text", lambda m: m["config"].__setitem__("eos_token_id", "eos"))
    add("architecture unknown", lambda m: m.__setitem__("architecture", "transformer-xl"))

    raw = {
        "not JSON": b"{not json",
        "truncated JSON": None,
        "random bytes": bytes(rng.getrandbits(8) for _ in range(300)),
        "JSON list": b"[1, 2, 3]",
        "JSON string": b'"pack"',
        "empty file": b"",
        "deep nesting": b"[" * 100_000 + b"]" * 100_000,
        "5 MB manifest": b'{"pad": "' + b"x" * (5 << 20) + b'"}',
        "NaN values": b'{"format": "atelier-pack", "schema_version": NaN}',
        "UTF-16": None,
    }
    for label, data in raw.items():
        def build(root: Path, base: Path, label=label, data=data) -> Action:
            pack = _copy_pack(root, base)
            text = (pack / "manifest.json").read_bytes()
            if label == "truncated JSON":
                data = text[: len(text) // 2]
            elif label == "UTF-16":
                data = text.decode().encode("utf-16")
            (pack / "manifest.json").write_bytes(data)
            return _all(_load_and_run(pack), _cli("models", "import", str(pack)))

        cases.append(Case(f"manifest: {label}", "manifest", build))
    return cases


def onnx_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, mutate: Callable[[Path], None], cli_text: bool = False):
        def build(root: Path, base: Path) -> Action:
            pack = _copy_pack(root, base)
            mutate(pack)
            actions = [_load_and_run(pack)]
            if cli_text:
                actions.append(_cli("text", "--model", str(pack), "--prompt", "hi", "--max-tokens", "3"))
            return _all(*actions)

        cases.append(Case(f"onnx: {name}", "onnx", build))

    def truncate(file: str, frac: float):
        def m(pack: Path):
            data = (pack / file).read_bytes()
            (pack / file).write_bytes(data[: int(len(data) * frac)])
            _rehash(pack)

        return m

    for frac in (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999):
        add(f"model.onnx truncated to {frac:.1%}", truncate("model.onnx", frac), cli_text=frac == 0.5)
    for frac in (0.0, 0.5, 0.99):
        add(f"weights truncated to {frac:.0%}", truncate("model.onnx.data", frac))

    def flip(file: str, seed: int, bits: int):
        def m(pack: Path):
            r = random.Random(seed)
            data = bytearray((pack / file).read_bytes())
            for _ in range(bits):
                i = r.randrange(len(data))
                data[i] ^= 1 << r.randrange(8)
            (pack / file).write_bytes(bytes(data))
            _rehash(pack)

        return m

    for k in range(30):
        add(f"model.onnx {1 + k % 8} bit flip(s) #{k}", flip("model.onnx", 100 + k, 1 + k % 8))
    for k in range(6):
        add(f"weights {4 ** k} bit flip(s)", flip("model.onnx.data", 200 + k, 4**k))

    def replace(file: str, data: bytes):
        def m(pack: Path):
            (pack / file).write_bytes(data)
            _rehash(pack)

        return m

    add("model.onnx random bytes", replace("model.onnx", bytes(rng.getrandbits(8) for _ in range(4096))), cli_text=True)
    add("model.onnx zeros", replace("model.onnx", bytes(4096)))
    add("model.onnx is a PNG", replace("model.onnx", _good_png()))
    for where in ("../escaped.data", "../../canary/x.data", "/etc/passwd", "sub/../../x.data", "extra.data", "model.onnx.data\0x"):
        def m(pack: Path, where=where):
            if where == "extra.data":
                (pack / "extra.data").write_bytes(bytes(1 << 20))  # present but not in the manifest
                _edit_onnx(pack, _set_external("location", where))
                manifest = json.loads((pack / "manifest.json").read_text())
                manifest["files"] = [f for f in manifest["files"] if f["path"] != "extra.data"]
                (pack / "manifest.json").write_text(json.dumps(manifest))
            else:
                _edit_onnx(pack, _set_external("location", where))

        add(f"external data at {where!r}", m)
    add("external offset past the end", lambda p: _edit_onnx(p, _set_external("offset", str(10**9))))
    add("external length huge", lambda p: _edit_onnx(p, _set_external("length", str(10**12))))
    add("external offset text", lambda p: _edit_onnx(p, _set_external("offset", "zero")))

    def dims(values):
        def change(model):
            t = model.graph.initializer[0]
            del t.dims[:]
            t.dims.extend(values)

        return change

    add("initializer dims 2^40 x 2^40", lambda p: _edit_onnx(p, dims([2**40, 2**40])))
    add("initializer negative dim", lambda p: _edit_onnx(p, dims([-384, 64])))
    add("initializer shape mismatch", lambda p: _edit_onnx(p, dims([7, 64])))

    def io_change(kind: str):
        def change(model):
            if kind == "input dtype":
                model.graph.input[0].type.tensor_type.elem_type = 1  # input_ids as float
            elif kind == "kv shape":
                for i in model.graph.input:
                    if i.name.startswith("past_key_values"):
                        i.type.tensor_type.shape.dim[1].dim_value = 7
            elif kind == "huge output dim":
                model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 2**50
            elif kind == "opset removed":
                del model.opset_import[:]
            elif kind == "unknown op":
                model.graph.node[0].op_type = "NoSuchOperator"
            elif kind == "graph emptied":
                del model.graph.node[:]

        return change

    for kind in ("input dtype", "kv shape", "huge output dim", "opset removed", "unknown op", "graph emptied"):
        add(f"graph {kind}", lambda p, k=kind: _edit_onnx(p, io_change(k)), cli_text=kind == "input dtype")

    def side_file(name: str, data: bytes | None):
        def m(pack: Path):
            if data is None:
                (pack / name).unlink()
            else:
                (pack / name).write_bytes(data)
            _rehash(pack)

        return m

    genai = json.dumps({"model": {"type": "llama", "decoder": {"filename": "../../canary/x.onnx"}}}).encode()
    side = {
        "genai_config names ../../canary": ("genai_config.json", genai),
        "genai_config not JSON": ("genai_config.json", b"{oops"),
        "genai_config a list": ("genai_config.json", b"[]"),
        "genai_config empty object": ("genai_config.json", b"{}"),
        "genai_config deep nesting": ("genai_config.json", b"[" * 50_000 + b"]" * 50_000),
        "tokenizer.json random": ("tokenizer.json", bytes(rng.getrandbits(8) for _ in range(500))),
        "tokenizer.json truncated": ("tokenizer.json", None),
        "tokenizer.json empty object": ("tokenizer.json", b"{}"),
        "tokenizer_config a list": ("tokenizer_config.json", b"[1]"),
        "chat template broken": ("chat_template.jinja", b"{% for m in messages %}{{ m.content "),
        "chat template raises": ("chat_template.jinja", b"{{ raise_exception('bad template') }}"),
        "chat template escapes sandbox": ("chat_template.jinja", b"{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        "chat template endless": ("chat_template.jinja", b"{% for i in range(10**9) %}x{% endfor %}"),
    }
    for label, (name, data) in side.items():
        if label == "tokenizer.json truncated":
            def m(pack: Path):
                t = (pack / "tokenizer.json").read_bytes()
                (pack / "tokenizer.json").write_bytes(t[: len(t) // 3])
                _rehash(pack)

            add(label, m)
        else:
            add(label, side_file(name, data))
    return cases


def import_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, make: Callable[[Path, Path], Path], import_name: str | None = None):
        def build(root: Path, base: Path) -> Action:
            target = make(root, base)
            args = ["models", "import", str(target)] + (["--name", import_name] if import_name else [])
            return _all(_import(target, import_name), _cli(*args))

        cases.append(Case(f"import: {name}", "import", build))

    z = lambda root, n: root / "inputs" / n  # noqa: E731
    for depth in range(1, 7):
        evil = "../" * depth + "canary/escaped.txt"
        add(f"zip entry {evil}", lambda r, b, e=evil: _zip(z(r, "t.zip"), _pack_entries(b) + [(e, b"pwned")]))
    for evil in ("/tmp/abs-escaped.txt", "..\\..\\..\\canary\\escaped.txt", "C:/escaped.txt", "tiny/../../../canary/e.txt", "tiny/\0x", "tiny/a:b"):
        add(f"zip entry {evil!r}", lambda r, b, e=evil: _zip(z(r, "t.zip"), _pack_entries(b) + [(e, b"pwned")]))

    def symlink_zip(r, b):
        path = z(r, "link.zip")
        with zipfile.ZipFile(path, "w") as zf:
            for n, d in _pack_entries(b):
                zf.writestr(n, d)
            info = zipfile.ZipInfo("tiny/link")
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "../../../canary")
        return path

    add("zip with a symlink entry", symlink_zip)

    def flagged(r, b, flag):
        path = _zip(z(r, "f.zip"), _pack_entries(b))
        data = bytearray(path.read_bytes())
        i = data.find(b"PK\x01\x02")  # first central-directory entry: set its flag bits
        data[i + 8] |= flag
        path.write_bytes(bytes(data))
        return path

    add("zip entry marked encrypted", lambda r, b: flagged(r, b, 0x1))
    add("zip with duplicate names", lambda r, b: _zip(z(r, "d.zip"), _pack_entries(b) + _pack_entries(b)[:1]))
    add("empty zip", lambda r, b: _zip(z(r, "e.zip"), []))
    add("zip of directories only", lambda r, b: _zip(z(r, "dirs.zip"), [("a/", b""), ("a/b/", b"")]))
    add("zip bomb: one 60 MB entry", lambda r, b: _zip(z(r, "bomb.zip"), [("tiny/model.onnx.data", bytes(60 << 20))]))
    add("zip bomb: 300 x 1 MB entries", lambda r, b: _zip(z(r, "bomb2.zip"), [(f"tiny/f{i}", bytes(1 << 20)) for i in range(300)]))
    add("zip with 10,001 entries", lambda r, b: _zip(z(r, "many.zip"), [(f"f{i}", b"") for i in range(10_001)], zipfile.ZIP_STORED))

    def lying(r, b):
        path = _zip(z(r, "lie.zip"), _pack_entries(b))
        data = bytearray(path.read_bytes())
        i = data.find(b"PK\x01\x02")
        struct.pack_into("<I", data, i + 24, 10)  # uncompressed size: 10 bytes (a lie)
        path.write_bytes(bytes(data))
        return path

    add("zip header lies about size", lying)

    def crc(r, b):
        path = _zip(z(r, "crc.zip"), _pack_entries(b), zipfile.ZIP_STORED)
        data = bytearray(path.read_bytes())
        i = data.find(b"tokenizer.json") + 200
        data[i] ^= 0xFF
        path.write_bytes(bytes(data))
        return path

    add("zip with a CRC mismatch", crc)
    for frac in (0.1, 0.5, 0.95):
        def trunc(r, b, frac=frac):
            path = _zip(z(r, "trunc.zip"), _pack_entries(b))
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * frac)])
            return path

        add(f"zip truncated to {frac:.0%}", trunc)
    add("random bytes named .zip", lambda r, b: _png(r, "rand.zip", bytes(rng.getrandbits(8) for _ in range(2000))))
    add("zip holding a broken manifest", lambda r, b: _zip(z(r, "bm.zip"), [(n, d if not n.endswith("manifest.json") else b"{") for n, d in _pack_entries(b)]))
    add("zip holding a valid pack", lambda r, b: _zip(z(r, "ok.zip"), _pack_entries(b)))

    def folder(files: dict[str, bytes]):
        def make(r, b):
            d = r / "inputs" / "folder"
            d.mkdir(parents=True)
            for n, data in files.items():
                (d / n).parent.mkdir(parents=True, exist_ok=True)
                (d / n).write_bytes(data)
            return d

        return make

    tok = b'{"version": "1.0"}'
    add("genai folder, config not JSON", folder({"genai_config.json": b"{", "tokenizer.json": tok, "model.onnx": b"x"}))
    add("genai folder, config a list", folder({"genai_config.json": b"[]", "tokenizer.json": tok, "model.onnx": b"x"}))
    add("genai folder, model names ../", folder({"genai_config.json": b'{"model": {"decoder": {"filename": "../../canary/x"}}}', "tokenizer.json": tok}))
    add("genai folder, decoder a string", folder({"genai_config.json": b'{"model": {"decoder": "x"}}', "tokenizer.json": tok, "model.onnx": b"x"}))
    add("optimum folder, graph random", folder({"config.json": b'{"model_type": "gpt2"}', "tokenizer.json": tok, "model.onnx": bytes(rng.getrandbits(8) for _ in range(999))}))
    add("optimum folder, config not JSON", folder({"config.json": b"{{", "tokenizer.json": tok, "model.onnx": b"\x08\x07"}))
    add("piper folder, config not JSON", folder({"voice.onnx": b"\x08\x07", "voice.onnx.json": b"{bad"}))
    add("piper folder, config wrong types", folder({"voice.onnx": b"\x08\x07", "voice.onnx.json": b'{"audio": 5, "phoneme_id_map": [1], "num_speakers": "x"}'}))
    add("empty folder", folder({}))
    add("unknown files", folder({"readme.txt": b"hello"}))

    def fifo(r, b):
        d = folder({"genai_config.json": b"{}", "tokenizer.json": tok})(r, b)
        os.mkfifo(d / "model.onnx")
        return d

    add("folder with a named pipe (must not hang)", fifo)

    def link(r, b):
        d = r / "inputs" / "linked"
        shutil.copytree(b, d)
        (d / "secret").symlink_to(r / "canary")
        _rehash(d)
        return d

    add("pack folder with a symlink", link)
    add("a file that is not a zip", lambda r, b: _png(r, "model.bin", b"\0" * 100))
    add("path that does not exist", lambda r, b: r / "inputs" / "nothing-here")
    for evil_name in ("../../canary/escaped", "/tmp/abs", "a" * 500, "\0", "..", ""):
        add(f"import --name {evil_name[:20]!r}", lambda r, b: _copy_pack(r, b), import_name=evil_name)
    return cases


def file_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(name: str, make: Callable[[Path], Path]):
        def build(root: Path, base: Path) -> Action:
            return _file_actions(make(root))

        cases.append(Case(f"file: {name}", "file", build))

    good = _good_png(_record())
    for frac in (0.05, 0.3, 0.6, 0.95):
        add(f"PNG truncated to {frac:.0%}", lambda r, f=frac: _png(r, "t.png", good[: int(len(good) * f)]))
    for k in range(8):
        def flipped(r, k=k):
            data = bytearray(good)
            rr = random.Random(k)
            for _ in range(1 + k):
                data[rr.randrange(8, len(data))] ^= 1 << rr.randrange(8)
            return _png(r, f"flip{k}.png", bytes(data))

        add(f"PNG {1 + k} bit flip(s)", flipped)
    add("PNG chunk length 2^31", lambda r: _png(r, "len.png", good[:8] + struct.pack(">I", 0x7FFFFFFF) + good[12:]))
    bomb = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * (16 << 20), 9))
    add("PNG zTXt bomb", lambda r: _png(r, "bomb.png", good[:33] + bomb + good[33:]))
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    add("PNG claiming 200k x 200k pixels", lambda r: _png(r, "huge.png", good[:8] + _chunk(b"IHDR", ihdr) + good[33:]))
    for label, text in {
        "record deep nesting": '{"generator": "Atelier", "settings": ' + "[" * 20_000 + "]" * 20_000 + "}",
        "record not JSON": "{generator: Atelier",
        "record a list": "[1, 2]",
        "record 1 MB": json.dumps({"generator": "Atelier", "pad": "x" * (1 << 20)}),
        "settings width text": _record(settings={"width": "64", "prompt": "x"}),
        "settings steps huge": _record(settings={"steps": 10**12}),
        "settings unknown key": _record(settings={"__import__": "os"}),
        "settings a list": _record(settings=[1, 2]),
        "settings guidance NaN": _record(settings={"guidance": float("nan")}),
        "kind speech": _record(kind="speech"),
    }.items():
        add(f"PNG {label}", lambda r, t=text: _png(r, "rec.png", _good_png(t)))
    add("JPEG truncated", lambda r: _png(r, "t.jpg", _jpeg()[:300]))
    add("JPEG random after header", lambda r: _png(r, "r.jpg", b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(3000))))
    add("GIF header only", lambda r: _png(r, "x.gif", b"GIF89a" + b"\0" * 10))

    wav = _good_wav()
    list_at = wav.index(b"LIST")
    wavs = {
        "WAV truncated header": wav[:20],
        "WAV truncated in LIST": wav[: list_at + 30],
        "WAV LIST size huge": wav[: list_at + 4] + struct.pack("<I", 0xFFFFFFF0) + wav[list_at + 8 :],
        "WAV INFO entry size huge": wav[: list_at + 16] + struct.pack("<I", 0xFFFFFF) + wav[list_at + 20 :],
        "WAV random after RIFF": b"RIFF" + struct.pack("<I", 4000) + b"WAVE" + bytes(rng.getrandbits(8) for _ in range(4000)),
        "WAV ICMT deep nesting": _good_wav("[" * 30_000 + "]" * 30_000),
        "WAV ICMT not ours": _good_wav('{"generator": "Other"}'),
        "WAV 10k empty chunks": wav[:12] + b"JUNK\0\0\0\0" * 20_000,
    }
    for label, data in wavs.items():
        add(label, lambda r, d=data, n=label: _png(r, "a.wav", d))
    mds = {
        "Markdown no closing": b"---\ntitle: x\n" + b"a: b\n" * 1000,
        "Markdown deep nesting": b"---\nprovenance: " + b"[" * 30_000 + b"]" * 30_000 + b"\n---\n",
        "Markdown invalid UTF-8": b"---\nprovenance: \xff\xfe\xfd\n---\n",
        "Markdown provenance a string": b'---\nprovenance: "Atelier"\n---\n',
        "Markdown 5 MB": b"---\n" + b"k: v\n" * (1 << 20),
        "Markdown BOM": b"\xef\xbb\xbf---\nprovenance: " + _record().encode() + b"\n---\nhi",
    }
    for label, data in mds.items():
        add(label, lambda r, d=data: _png(r, "c.md", d))
    add("a directory", lambda r: (r / "inputs" / "dir").mkdir(parents=True) or r / "inputs" / "dir")
    add("missing file", lambda r: r / "inputs" / "missing.png")
    return cases


def _jpeg() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 99, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _good_wav(comment: str | None = None) -> bytes:
    import numpy as np

    from desktop.engines.speech.wav import _info_chunk, to_pcm16

    pcm = to_pcm16(np.zeros(200, np.float32))
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + _info_chunk({"ICMT": comment or _record(kind="speech"), "ISFT": "Atelier"})
    body += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def request_cases(rng: random.Random) -> list[Case]:
    """Requests with wrong types and shapes, validated and (text) run on the tiny engine."""
    cases: list[Case] = []
    import numpy as np

    def add(name: str, make: Callable[[], Any], run_text: bool = False):
        def build(root: Path, base: Path) -> Action:
            def run():
                req = make()
                req.validate()
                if run_text:
                    from desktop.engines.base import open_engine
                    from desktop.engines.packs.pack import load_pack

                    engine = open_engine(load_pack(base))
                    try:
                        return sum(1 for _ in engine.generate(req))
                    finally:
                        engine.close()

            return run

        cases.append(Case(f"request: {name}", "request", build))

    def chat(**kw):
        from desktop.engines.text.sampling import SamplingSettings
        from desktop.engines.text.engine import ChatRequest

        sampling = kw.pop("sampling", {})
        return lambda: ChatRequest(kw.pop("messages", [{"role": "user", "content": "hi"}]), sampling=SamplingSettings(**sampling), **kw)

    add("chat messages a string", chat(messages="hello"), True)
    add("chat content a number", chat(messages=[{"role": "user", "content": 5}]), True)
    add("chat role missing", chat(messages=[{"content": "x"}]), True)
    add("chat message not a dict", chat(messages=["hi"]), True)
    add("chat max_tokens text", chat(max_tokens="5"), True)
    add("chat max_tokens 10^9", chat(max_tokens=10**9), True)
    add("chat temperature NaN", chat(sampling={"temperature": float("nan")}), True)
    add("chat temperature text", chat(sampling={"temperature": "hot"}), True)
    add("chat top_k float", chat(sampling={"top_k": 2.5}), True)
    add("chat seed negative", chat(sampling={"seed": -1}), True)
    add("chat 300k characters", chat(messages=[{"role": "user", "content": "x" * 300_000}]), True)
    add("chat stop not a tuple", chat(stop=5), True)

    def image(**kw):
        from desktop.engines.image.engine import ImageRequest

        return lambda: ImageRequest(**kw)

    add("image width text", image(prompt="x", width="512", height=512))
    add("image width negative", image(prompt="x", width=-64, height=64))
    add("image 10^6 pixels a side", image(prompt="x", width=10**6, height=10**6))
    add("image prompt a number", image(prompt=5))
    add("image init 2-D float", image(prompt="x", width=64, height=64, init_image=np.zeros((64, 64))))
    add("image init 4 channels", image(prompt="x", width=64, height=64, init_image=np.zeros((64, 64, 4), np.uint8)))
    add("image strength NaN", image(prompt="x", width=64, height=64, init_image=np.zeros((64, 64, 3), np.uint8), strength=float("nan")))
    add("image steps text", image(prompt="x", steps="20"))

    def speech(text, **synthesis):
        from desktop.engines.speech.engine import SpeechRequest
        from desktop.engines.speech.synthesis import SynthesisSettings

        return lambda: SpeechRequest(text, SynthesisSettings(**synthesis))

    add("speech text None", speech(text=None))
    add("speech text a number", speech(text=5))
    add("speech speed NaN", speech(text="hi", speed=float("nan")))
    add("speech speed text", speech(text="hi", speed="fast"))
    add("speech 100k characters", speech(text="word " * 20_000))
    return cases


def all_cases(seed: int = 5) -> list[Case]:
    rng = random.Random(seed)
    return manifest_cases(rng) + onnx_cases(rng) + import_cases(rng) + file_cases(rng) + request_cases(rng)
