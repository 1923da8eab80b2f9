"""The API server started in-process on 127.0.0.1 with port 0, driven by the official
``openai`` client. Libraries hold tiny random packs (text, voice) and our small image
pack; nothing here reaches any address but 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.speech_helpers import cached_voice

ROOT = Path(__file__).resolve().parents[2]
IMAGE_PACK = ROOT / "resources" / "models" / "atelier-fashion-gan"


def export_long_tiny(root: Path) -> Path:
    """The tiny random llama with a 4096-token context: long enough that a reply cannot
    finish before a test's client hangs up."""
    from transformers import LlamaConfig, LlamaForCausalLM

    import exporters

    from tests.tiny_models import tiny_tokenizer

    out = root / "pack-long"
    if (out / "manifest.json").is_file():
        return out
    import torch

    src = root / "hf-long"
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, tie_word_embeddings=False, vocab_size=len(tok), eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(str(src))
    tok.save_pretrained(str(src))
    return exporters.export("text", src, out, "fp32", name="tiny-long", force=True)


def _cache_key() -> str:
    """Rebuild cached packs when the exporter or the tiny model recipe changes."""
    import hashlib

    sources = [ROOT / "tests" / "tiny_models.py", Path(__file__), ROOT / "exporters" / "pipeline.py", *sorted((ROOT / "exporters" / "text").glob("*.py"))]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]


@pytest.fixture(scope="session")
def api_library(tmp_path_factory, cache_dir) -> Path:
    """A model folder with a text pack (tiny llama, 256 context), a long-context text pack,
    a voice and an image pack."""
    from desktop.engines.packs.pack import load_pack
    from tests.tiny_models import export_tiny

    root = tmp_path_factory.mktemp("api-library")
    work = cache_dir / f"server-{_cache_key()}"
    work.mkdir(parents=True, exist_ok=True)
    for src in (export_tiny("llama", work), export_long_tiny(work), cached_voice(cache_dir), IMAGE_PACK):
        name = load_pack(src, verify_hashes=False).name
        shutil.copytree(src, root / name)
    return root


def start_server(library_root: Path, **config):
    from desktop.engines.packs.library import Library
    from desktop.server.config import ServerConfig
    from desktop.server.run import ApiServer

    config.setdefault("port", 0)
    config.setdefault("memory_budget_bytes", 4 * 2**30)
    return ApiServer(ServerConfig(**config), Library(library_root)).start()


@pytest.fixture(scope="module")
def server(api_library):
    srv = start_server(api_library)
    yield srv
    srv.stop()


@pytest.fixture()
def client(server):
    import openai

    with openai.OpenAI(base_url=server.url, api_key="unused-on-loopback", max_retries=0, timeout=120) as c:
        yield c
