"""The first lookups of an architecture registry can come from two worker threads at once
(the Speech studio and Chat's read-aloud each load a voice when the window opens). The
second must wait for every implementation module to register, not see a half-filled
registry and call a known voice unknown (a test of the window failed that way)."""

from __future__ import annotations

import sys
import textwrap
import threading

from desktop.engines.registry import ArchitectureRegistry


def test_a_lookup_during_the_first_import_waits_for_it(tmp_path, monkeypatch):
    pkg = tmp_path / "slow_impls"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    # The module blocks mid-import until the test lets it go, so the second lookup
    # certainly arrives while the first is still importing.
    (pkg / "slow.py").write_text(textwrap.dedent("""
        import slow_impls_gate
        slow_impls_gate.importing.set()
        slow_impls_gate.release.wait(10)
        slow_impls_gate.REGISTRY.register("slow-arch")(type("Slow", (), {}))
    """))
    gate = type(sys)("slow_impls_gate")
    gate.importing, gate.release = threading.Event(), threading.Event()
    gate.REGISTRY = ArchitectureRegistry("slow_impls", [str(pkg)])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "slow_impls_gate", gate)
    monkeypatch.delitem(sys.modules, "slow_impls", raising=False)
    monkeypatch.delitem(sys.modules, "slow_impls.slow", raising=False)

    found = {}
    first = threading.Thread(target=lambda: found.setdefault("first", gate.REGISTRY.get("slow-arch")))
    first.start()
    assert gate.importing.wait(10)
    second = threading.Thread(target=lambda: found.setdefault("second", gate.REGISTRY.get("slow-arch")))
    second.start()
    second.join(0.2)  # it must still be waiting: the import has not finished
    waited = second.is_alive()
    gate.release.set()
    first.join(10)
    second.join(10)
    assert waited
    assert found["first"] is found["second"] is not None
    assert gate.REGISTRY.known() == ["slow-arch"]
