"""Slow: chunked prefill on the real SmolLM2 int4 pack gives the same greedy reply as the
prompt fed in one call."""

from __future__ import annotations

import pytest

from desktop.engines.text.engine import PREFILL_CALL_S, PrefillChunks, TextEngine
from tests.engines.test_prefill import FixedChunks, greedy, long_messages
from tests.engines.test_smollm2_real import smollm2_pack  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_smollm2_greedy_reply_is_the_same_with_and_without_chunks(smollm2_pack):  # noqa: F811
    engine = TextEngine(smollm2_pack)
    try:
        messages = long_messages(engine, 520)
        whole, done, _ = greedy(engine, messages, PrefillChunks(0), max_tokens=16)
        assert done.stats["prompt_tokens"] >= 480
        for chunks in (FixedChunks(37), PrefillChunks(PREFILL_CALL_S)):
            ids, _, _ = greedy(engine, messages, chunks, max_tokens=16)
            assert ids == whole
    finally:
        engine.close()
