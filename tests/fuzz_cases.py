"""Generated malformed packs and inputs for the robustness fuzz test.

Each case builds its inputs under ``root/inputs`` from the tiny text pack (a real export)
and returns the *action*: the loaders, engines and CLI commands a user would run on it.
Pack cases rewrite the manifest's hashes after corrupting a file, so the damage reaches
the deeper checks (ONNX structure, external data, runtime) instead of stopping at the
hash check. Deterministic: the same seed gives the same cases.
"""

from __future__ import annotations

import json
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
        from desktop.engines.text.engine import ChatRequest
        from desktop.engines.text.sampling import SamplingSettings

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

    from desktop.outputs.provenance_png import RECORD_KEY

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
        from desktop.outputs.image_meta import read_settings

        return read_settings(path)

    def provenance():
        from desktop.commands.provenance import read_file_provenance

        return read_file_provenance(path)

    def inspect():
        from desktop.commands.provenance import inspect_file

        return inspect_file(path)

    return _all(provenance, inspect, reproduce, _cli("verify", str(path)))


# -- case families (manifests, ONNX graphs and imports: tests/fuzz_cases_malformed.py) ------
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
        from desktop.engines.text.engine import ChatRequest
        from desktop.engines.text.sampling import SamplingSettings

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
    return file_cases(rng) + request_cases(rng)
