"""The model library page: listing, validation summary, verify, import, remove."""

from __future__ import annotations

import shutil
import zipfile

from desktop.engines.packs.library import Library
from desktop.ui.library import LibraryPage
from tests.desktop.app_helpers import ctx, data_pack, messages  # noqa: F401 - fixture


def _run(qtbot, page, worker):
    # the page's job bar drops the worker on ``finished`` (connected before the start)
    assert worker is not None
    qtbot.waitUntil(lambda: not page.job_bar.busy, timeout=30000)


def _page(qtbot, ctx):  # noqa: F811
    page = LibraryPage(ctx)
    qtbot.addWidget(page)
    return page


def test_lists_pack_with_facts_card_and_validation_summary(qtbot, ctx):  # noqa: F811
    data_pack(Library().destination("demo-text"))
    page = _page(qtbot, ctx)
    assert page.list.count() == 1
    page.select("demo-text")
    d = page.details
    facts = {d.form.itemAt(i, d.form.ItemRole.LabelRole).widget().text(): d.form.itemAt(i, d.form.ItemRole.FieldRole).widget().text() for i in range(d.form.rowCount())}
    assert facts["Modality:"] == "text" and facts["Precision:"] == "int8" and facts["Architecture:"] == "llama"
    assert facts["Estimated RAM:"] == "300.0 MB"
    assert facts["Licence:"] == "Apache License 2.0 (apache-2.0) - see the Licence tab"
    assert facts["Size on disk:"].endswith("KB")
    report = d.validation.toPlainText()
    assert "Passed the int8 quality floor" in report
    assert "95.3%" in report  # teacher-forced agreement of the shipped precision
    assert "1.017" in report  # perplexity ratio
    assert "The capital of France is Paris." in report
    card = d.card.toPlainText()
    assert "Demo model" in card and "<b>" in card  # raw HTML from a pack is shown, never rendered


def test_pack_without_validation_says_so(qtbot, ctx):  # noqa: F811
    data_pack(Library().destination("imported"), name="imported", validation={})
    page = _page(qtbot, ctx)
    assert "no validation report" in page.details.validation.toPlainText()


def test_verify_reports_verified_then_failed_after_corruption(qtbot, ctx):  # noqa: F811
    folder = data_pack(Library().destination("demo-text"))
    page = _page(qtbot, ctx)
    _run(qtbot, page, page.verify_selected())
    assert page.details.integrity_state == "verified"
    assert "✓" in page.list.item(0).text()
    blob = bytearray((folder / "model.onnx").read_bytes())
    blob[10] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(blob))
    _run(qtbot, page, page.verify_selected())
    assert page.details.integrity_state == "failed"
    assert "model.onnx" in page.details.integrity.text()
    assert any("damaged" in m for m in messages(ctx, "error"))


def test_import_of_unknown_folder_says_what_is_accepted(qtbot, ctx, tmp_path):  # noqa: F811
    junk = tmp_path / "holiday-photos"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model")
    page = _page(qtbot, ctx)
    _run(qtbot, page, page.import_path(junk))
    errors = messages(ctx, "error")
    assert len(errors) == 1
    assert "not a model format Atelier knows" in errors[0]
    assert "Accepted:" in errors[0] and "Atelier pack" in errors[0] and "onnxruntime-genai" in errors[0]
    assert page.list.count() == 0 and not any(Library().root.iterdir())


def test_zip_with_parent_entries_is_refused_and_writes_nothing(qtbot, ctx, tmp_path):  # noqa: F811
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pack/manifest.json", "{}")
        zf.writestr("../../escaped.txt", "gotcha")
    page = _page(qtbot, ctx)
    _run(qtbot, page, page.import_path(archive))
    errors = messages(ctx, "error")
    assert len(errors) == 1 and "points outside the archive" in errors[0]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not any(Library().root.iterdir())


def test_import_of_a_pack_selects_it_and_announces_the_change(qtbot, ctx, tmp_path):  # noqa: F811
    src = data_pack(tmp_path / "src", name="fresh-pack")
    page = _page(qtbot, ctx)
    with qtbot.waitSignal(ctx.events.library_changed, timeout=30000):
        page.import_path(src)
    assert page.selected_entry().name == "fresh-pack"
    assert page.details.integrity_state == "verified"
    assert (Library().destination("fresh-pack") / "manifest.json").is_file()


def test_pack_removed_from_disk_while_selected_gives_a_clear_message(qtbot, ctx):  # noqa: F811
    folder = data_pack(Library().destination("demo-text"))
    page = _page(qtbot, ctx)
    assert page.selected_entry().name == "demo-text"
    shutil.rmtree(folder)
    with qtbot.waitSignal(ctx.events.library_changed, timeout=5000):
        assert page.verify_selected() is None
    errors = messages(ctx, "error")
    assert errors and "no longer on disk" in errors[-1] and "demo-text" in errors[-1]
    assert page.list.count() == 0 and page.details.title.text() == "No model selected"


def test_remove_asks_first_and_announces(qtbot, ctx, monkeypatch):  # noqa: F811
    folder = data_pack(Library().destination("demo-text"))
    page = _page(qtbot, ctx)
    monkeypatch.setattr(page, "confirm", lambda *a: False)
    assert page.remove_selected() is False and folder.is_dir()
    monkeypatch.setattr(page, "confirm", lambda *a: True)
    with qtbot.waitSignal(ctx.events.library_changed, timeout=5000):
        assert page.remove_selected() is True
    assert not folder.exists() and page.list.count() == 0


def test_cancel_stops_verification_before_the_end(qtbot, ctx):  # noqa: F811
    data_pack(Library().destination("big"), name="big", size=96 * 2**20)  # 24 progress steps
    page = _page(qtbot, ctx)
    worker = page.verify_selected()
    with qtbot.waitSignal(worker.signals.aborted, timeout=30000):
        page.stop()  # Esc / Cancel
    qtbot.waitUntil(lambda: not page.job_bar.busy)
    assert page.details.integrity_state == "unknown"  # neither verified nor failed
    assert not any("verified" in m for m in messages(ctx))


def test_cancelled_import_leaves_nothing_behind(qtbot, ctx, tmp_path):  # noqa: F811
    src = data_pack(tmp_path / "src", name="unwanted", size=32 * 2**20)
    page = _page(qtbot, ctx)
    worker = page.import_path(src)
    with qtbot.waitSignal(worker.signals.aborted, timeout=30000):
        page.job_bar.cancel()
    qtbot.waitUntil(lambda: not page.job_bar.busy)
    assert not Library().destination("unwanted").exists() and page.list.count() == 0
    assert "Import cancelled; nothing was added to the library." in messages(ctx, "info")


def test_pack_deleted_outside_the_app_is_noticed_and_explained(qtbot, ctx):  # noqa: F811
    folder = data_pack(Library().destination("demo-text"))
    page = _page(qtbot, ctx)
    with qtbot.waitSignal(ctx.events.library_changed, timeout=10000):  # the folder watcher
        shutil.rmtree(folder)
    assert page.list.count() == 0
    assert any("no longer in the library" in w and "demo-text" in w for w in messages(ctx, "warning"))
