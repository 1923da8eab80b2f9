"""1,000 start/cancel cycles of a tiny text job keep resident memory flat."""

from __future__ import annotations

from tests.memory_cycles import text_cycles
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

MAX_SLOPE = 1024  # bytes per cycle: 1 MB over 1,000 cycles would already be a leak worth fixing


def test_start_cancel_cycles_keep_memory_flat(tiny_text_pack):  # noqa: F811
    samples, slope = text_cycles(tiny_text_pack, cycles=1000)
    assert len(samples) == 40
    growth = samples[-1][1] - samples[0][1]
    assert slope < MAX_SLOPE, f"resident memory grows {slope:.0f} B per cycle ({growth / 2**20:.1f} MB over 1,000 cycles)"
