"""Execution-provider choice and fallback logic."""

from __future__ import annotations

import pytest

from desktop.engines.errors import ProviderError
from desktop.engines.providers import RuntimeSettings, create_with_fallback, resolve_order

CPU, CUDA, DML = "CPUExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider"


def test_auto_prefers_cuda_then_directml_then_cpu():
    assert resolve_order("auto", [CPU, DML, CUDA])[0] == ["cuda", "directml", "cpu"]
    assert resolve_order("auto", [CPU])[0] == ["cpu"]


def test_requested_but_not_installed_falls_back_with_reason():
    order, reason = resolve_order("cuda", [CPU])
    assert order == ["cpu"] and "not available" in reason


def test_create_reports_fallback_when_provider_missing():
    obj, report = create_with_fallback(lambda name: name, RuntimeSettings(provider="cuda"), [CPU])
    assert obj == "cpu"
    assert report.fell_back and report.requested == "cuda" and report.used == "cpu"
    assert "CUDA" in report.message()


def test_create_falls_back_when_provider_fails_to_start():
    def factory(name):
        if name == "cuda":
            raise RuntimeError("libcudnn.so.9: cannot open shared object file")
        return name

    obj, report = create_with_fallback(factory, RuntimeSettings(provider="auto"), [CUDA, CPU])
    assert obj == "cpu" and report.fell_back and "libcudnn" in report.fallback_reason


def test_no_fallback_when_all_is_well():
    obj, report = create_with_fallback(lambda name: name, RuntimeSettings(), [CPU])
    assert obj == "cpu" and not report.fell_back


def test_cpu_failure_propagates():
    def factory(name):
        raise ValueError("bad model")

    with pytest.raises(ValueError):
        create_with_fallback(factory, RuntimeSettings(provider="cpu"), [CPU])


def test_unknown_provider_name_is_a_clear_error():
    with pytest.raises(ProviderError, match="Choose one of"):
        RuntimeSettings(provider="tpu")


def test_real_session_on_missing_provider_falls_back(tiny_packs):
    from desktop.engines.packs.pack import load_pack
    from desktop.engines.providers import make_session

    pack = load_pack(tiny_packs["gpt2"])
    session, report = make_session(str(pack.file_with_role("decoder")), RuntimeSettings(provider="directml"))
    assert report.used == "cpu" and report.fell_back
    assert session.get_providers()[0] == CPU
