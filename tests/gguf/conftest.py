"""Tiny random llama GGUF files, written once per session (gguf's writer and quantizer)."""

from __future__ import annotations

import pytest

QUANTIZABLE = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")  # what gguf.quants can write


@pytest.fixture(scope="session")
def tiny_ggufs(tmp_path_factory):
    """{(qtype, tied): path} built lazily; the models themselves once per tie setting."""
    from tests.gguf.tiny_gguf import tiny_llama, write_gguf

    root = tmp_path_factory.mktemp("tiny-gguf")
    models, files = {}, {}

    def get(qtype: str, tied: bool = False, chat: bool = True):
        key = (qtype, tied, chat)
        if key not in files:
            if tied not in models:
                models[tied] = tiny_llama(tied=tied)
            model, tok = models[tied]
            files[key] = write_gguf(model, tok, root / f"tiny-{qtype}-{'tied' if tied else 'untied'}{'' if chat else '-completion'}.gguf", qtype, **({} if chat else {"chat_template": None}))
        return files[key]

    return get


@pytest.fixture(scope="session")
def tiny_tok():
    from tests.tiny_models import tiny_tokenizer

    return tiny_tokenizer()
