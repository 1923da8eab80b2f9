"""Helpers for the app-shell tests (library, settings, welcome, self-test).

``data_pack`` writes a small pack whose "model" is a few random bytes: the library page
only reads manifests and hashes files, so it needs a real pack record, not a model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import write_manifest

TEXT_VALIDATION = {
    "reference": "PyTorch fp32",
    "reports": {
        "fp32": {"teacher_forced_agreement": 1.0, "perplexity_ratio": 1.0, "max_abs_logit_diff": 0.0},
        "int8": {
            "teacher_forced_agreement": 0.9531,
            "greedy_prefix_match": 0.875,
            "perplexity": 12.71,
            "reference_perplexity": 12.5,
            "perplexity_ratio": 1.0168,
            "max_abs_logit_diff": 0.81,
            "answers": [
                {"prompt": "What is the capital of France?", "answer": "The capital of France is Paris.", "finish": "eos"},
                {"prompt": "What is 12 times 7?", "answer": "12 times 7 is 84.", "finish": "eos"},
            ],
        },
    },
    "passed_floor": True,
    "floor_note": "meets the int8 floor",
    "forced": False,
    "seconds": 61.2,
}


def data_pack(folder: Path, name: str = "demo-text", modality: str = "text", validation: dict | None = None, size: int = 4096) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(os.urandom(size))
    write_manifest(
        folder,
        {
            "name": name,
            "modality": modality,
            "architecture": "llama",
            "runtime": "onnxruntime",
            "precision": "int8",
            "context_length": 2048,
            "license": {"id": "apache-2.0"},
            "model_card": "# Demo model\n\nA *tiny* card with <b>html</b> that must not render.",
            "validation": validation if validation is not None else TEXT_VALIDATION,
            "config": {"estimated_ram_bytes": 300 * 2**20},
        },
        {"model.onnx": "decoder"},
    )
    return folder


@pytest.fixture
def ctx(qtbot):
    from desktop.settings import Settings
    from desktop.ui.main_window import AppContext
    from desktop.ui.notifier import Notifier

    return AppContext(Settings(), Notifier(), Library())


def messages(ctx, level: str | None = None) -> list[str]:
    return [text for lvl, text in ctx.notifier.history if level is None or lvl == level]
