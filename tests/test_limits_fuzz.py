"""The limits fuzz cases (tests/fuzz_cases_limits.py): every one ends in a typed error or
success, within the time limit, in a sandbox of its own, writing nothing outside it."""

from __future__ import annotations

import logging
import time

import pytest

from desktop.engines.errors import AtelierError
from tests.fuzz_cases_limits import all_cases
from tests.fuzz_runner import _snapshot
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture

CASES = all_cases()


def test_cases_cover_every_class_of_the_limits():
    assert {c.category for c in CASES} == {"template", "tokenizer", "limits", "os", "escape"}
    assert len(CASES) >= 50 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_limits_case_is_typed_and_bounded(index, tiny_text_pack, tmp_path, monkeypatch):  # noqa: F811
    case = CASES[index]
    for sub in ("home", "out", "inputs", "canary"):
        (tmp_path / sub).mkdir()
    (tmp_path / "canary" / "keep.txt").write_text("canary")
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "out")
    logging.disable(logging.CRITICAL)
    try:
        action = case.build(tmp_path, tiny_text_pack)
        before = _snapshot(tmp_path, ("home", "out"))
        start = time.monotonic()
        try:
            action()
        except AtelierError as exc:
            assert str(exc).strip() and "Traceback" not in str(exc)
        assert time.monotonic() - start < 30, case.name
        assert _snapshot(tmp_path, ("home", "out")) == before, "wrote outside the library and the output folder"
    finally:
        logging.disable(logging.NOTSET)
