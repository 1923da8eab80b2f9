"""A tokenizer.json that makes the Rust ``tokenizers`` library fail - with an error or with
a panic (``pyo3_runtime.PanicException``, a BaseException that slips past ``except
Exception``) - is the pack's fault: a typed PackFormatError, one line in the CLI, and the
panic's own message and backtrace in the log file, not on the terminal."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from desktop.engines.errors import PackFormatError
from tests.test_cli import cli, env_with
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


def _pack_with_tokenizer(base: Path, dest: Path, change) -> Path:
    from tests.fuzz_cases import _rehash

    shutil.copytree(base, dest)
    tok = json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))
    change(tok)
    (dest / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    _rehash(dest)
    return dest


def _panicking_normalizer(tok: dict) -> None:
    # an unparsable SentencePiece charsmap: tokenizers panics while loading it
    tok["normalizer"] = {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(b"\xff\xff\xff\x7f" + b"\x01" * 20).decode()}


def _bad_regex(tok: dict) -> None:
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(?<=\\xc3)"}, "behavior": "Isolated", "invert": False}


def _fails_on_encode(tok: dict) -> None:
    # loads fine, then raises on any text with a character outside its 2-entry vocabulary
    tok["model"] = {"type": "Unigram", "unk_id": None, "vocab": [["<|im_start|>", 0.0], ["<|im_end|>", 0.0]], "byte_fallback": False}
    tok["pre_tokenizer"] = tok["decoder"] = tok["post_processor"] = None
    tok["added_tokens"] = []


CASES = {"panic at load": _panicking_normalizer, "invalid regex": _bad_regex, "error at encode": _fails_on_encode}


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_turns_tokenizer_failures_into_pack_errors(name, tiny_text_pack, tmp_path):  # noqa: F811
    from desktop.engines.base import open_engine
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.text.sampling import SamplingSettings
    from desktop.engines.text.engine import ChatRequest

    pack = _pack_with_tokenizer(tiny_text_pack, tmp_path / "p", CASES[name])
    with pytest.raises(PackFormatError, match="tokenizer"):
        engine = open_engine(load_pack(pack))
        try:
            list(engine.generate(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=2, sampling=SamplingSettings(seed=0))))
        finally:
            engine.close()


def test_panic_is_a_base_exception_so_the_catch_must_be_wide():
    """Documents why the engine catches BaseException: the library's panic type."""
    from tokenizers import Tokenizer

    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": None, "model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}}
    _panicking_normalizer(tok)
    with pytest.raises(BaseException) as info:
        Tokenizer.from_str(json.dumps(tok))
    assert not isinstance(info.value, Exception) and type(info.value).__name__ == "PanicException"


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_tokenizer_failure_is_one_line_and_the_details_go_to_the_log(name, tiny_text_pack, tmp_path, atelier_home):  # noqa: F811
    pack = _pack_with_tokenizer(tiny_text_pack, tmp_path / "p", CASES[name])
    env = env_with(atelier_home)
    env["RUST_BACKTRACE"] = "1"  # the panic prints its backtrace: it must not reach the terminal
    r = cli("text", "--model", str(pack), "--prompt", "hi", "--max-tokens", "2", env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: The tokenizer") and r.stderr.count("\n") == 1, r.stderr
    assert "panicked" not in r.stderr and "Traceback" not in r.stderr
    if name == "panic at load":
        assert "panicked" in (atelier_home / "logs" / "atelier.log").read_text(encoding="utf-8")


def _minimal_tokenizer(change) -> dict:
    from tokenizers import Tokenizer, models

    tok = json.loads(Tokenizer(models.WordLevel({"<|startoftext|>": 0, "<|endoftext|>": 1, "a": 2}, unk_token="a")).to_str())
    change(tok)
    return tok


@pytest.mark.parametrize("name", sorted(CASES))
def test_image_clip_tokenizer_failures_are_pack_errors(name, tmp_path):
    from desktop.engines.image.clip_tokenizer import ClipTokenizer

    def change(tok):
        CASES[name](tok)
        if name == "error at encode":  # keep the two specials the CLIP tokenizer looks up
            tok["model"]["vocab"] = [["<|startoftext|>", 0.0], ["<|endoftext|>", 0.0]]

    (tmp_path / "tokenizer.json").write_text(json.dumps(_minimal_tokenizer(change)))
    with pytest.raises(PackFormatError, match="tokenizer"):
        ClipTokenizer(tmp_path).encode("a red apple")
