"""Fuzz: >= 200 generated malformed packs and inputs through the loaders, engines and
CLI - zero crashes, every failure a typed AtelierError with a clear message, nothing
written outside the library and the output folder."""

from __future__ import annotations

import pytest

from tests.fuzz_runner import _snapshot, run_fuzz, summarize
from tests.tiny_sources import tiny_text_pack  # noqa: F401 - fixture


@pytest.mark.slow
def test_fuzz_malformed_packs_and_inputs(tmp_path, tiny_text_pack):  # noqa: F811
    records = run_fuzz(tmp_path / "fuzz", tiny_text_pack)
    summary = summarize(records)
    bad = [r for r in records if r["outcome"] not in ("ok", "typed") or r.get("traceback") or r.get("network")]
    assert summary["cases"] >= 200, summary
    assert not bad, "\n".join(f"{r['outcome']}: {r['name']}: {r.get('error', '')} {r.get('message', '')} {r.get('network_calls', '')}" for r in bad)
    assert set(summary["by category"]) >= {"manifest", "onnx", "import", "file", "request"}  # + every tests/fuzz_cases*.py module's
    malformed = [r for r in records if r.get("module") in ("fuzz_cases", "fuzz_cases_malformed")]
    typed = [r for r in malformed if r["outcome"] == "typed"]
    assert len(typed) > 0.8 * len(malformed)  # nearly every malformed input is refused, not silently accepted
    assert all(len(r["message"]) > 15 for r in typed)  # a sentence, not a bare code


def test_escape_detection_sees_writes_outside_the_library(tmp_path):
    for sub in ("home", "out", "inputs", "canary"):
        (tmp_path / sub).mkdir()
    before = _snapshot(tmp_path, ("home", "out"))
    (tmp_path / "home" / "pack.onnx").write_bytes(b"x")  # allowed: the library
    (tmp_path / "out" / "image.png").write_bytes(b"x")  # allowed: the output folder
    assert _snapshot(tmp_path, ("home", "out")) == before
    (tmp_path / "canary" / "escaped.txt").write_bytes(b"x")
    assert _snapshot(tmp_path, ("home", "out")) != before


def test_data_loss_detection_sees_removed_and_overwritten_files(tmp_path):
    from tests.fuzz_runner import _contents, _lost

    for sub, name in (("out", "old.png"), ("inputs", "pack.zip"), ("canary", "keep.txt"), ("out", "grows.log")):
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / name).write_bytes(b"precious bytes")
    before = _contents(tmp_path, ("out", "inputs", "canary"))
    (tmp_path / "out" / "grows.log").write_bytes(b"precious bytes, and more")  # appended: fine
    assert _lost(before, tmp_path) == []
    (tmp_path / "out" / "old.png").write_bytes(b"replaced")
    (tmp_path / "inputs" / "pack.zip").unlink()
    assert _lost(before, tmp_path) == ["out/old.png overwritten", "inputs/pack.zip removed"]


def test_every_fuzz_cases_module_is_run():
    from tests.fuzz_runner import all_cases, case_modules

    modules = case_modules()
    assert modules[0] == "tests.fuzz_cases" and "tests.fuzz_cases_writes" in modules
    assert {c.module for c in all_cases()} == {m.removeprefix("tests.") for m in modules}


def test_network_syscalls_are_charged_to_the_case_running_then(tmp_path):
    from tests.fuzz_runner import _network_calls

    (tmp_path / "strace-0000.log").write_text(
        '10 sendto(3, "atelier-fuzz-case 0", 19, 0, NULL, 0) = 19\n'
        "10 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 5\n"
        '10 sendto(3, "atelier-fuzz-case 1", 19, 0, NULL, 0) = 19\n'
        "11 socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP) = 7\n"
        '11 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16) = 0\n'
        "12 socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 8\n"
    )
    calls = _network_calls(tmp_path)
    assert list(calls) == [1] and len(calls[1]) == 3
