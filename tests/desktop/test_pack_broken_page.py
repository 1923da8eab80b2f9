"""The Library page shows a half or damaged pack as broken and lets the user remove it."""

from __future__ import annotations

from desktop.engines.packs.library import Library
from desktop.ui.library import LibraryPage
from tests.desktop.app_helpers import ctx, data_pack  # noqa: F401 - fixture


def _page(qtbot, ctx):  # noqa: F811
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    return page


def test_half_packs_are_listed_as_broken_and_can_be_removed(qtbot, ctx, monkeypatch):  # noqa: F811
    lib = Library()
    (lib.root / "no-manifest").mkdir()
    (lib.root / "no-manifest" / "model.onnx").write_bytes(b"half a copy")
    incomplete = data_pack(lib.destination("demo-text"))
    (incomplete / "model.onnx").write_bytes(b"truncated")
    page = _page(qtbot, ctx)
    labels = [page.list.item(i).text() for i in range(page.list.count())]
    assert len(labels) == 2 and all("broken" in label for label in labels)
    page.list.setCurrentRow(0)
    assert page.details.problem.isVisibleTo(page) and "cannot be used" in page.details.problem.text()
    assert page.details.remove_button.isEnabled() and not page.details.verify_button.isEnabled()
    monkeypatch.setattr(page, "confirm", lambda *a: True)
    assert page.remove_selected()
    page.list.setCurrentRow(0)
    assert page.remove_selected()
    assert Library().entries() == [] and page.list.count() == 0
