"""Settings: persistence, a corrupted file, a provider that is not installed, Offline status."""

from __future__ import annotations

from desktop.engines.packs.library import Library
from desktop.settings import Settings
from desktop.ui.settings_page import SettingsPage
from tests.desktop.app_helpers import ctx, messages  # noqa: F401 - fixture


def _page(qtbot, ctx):  # noqa: F811
    page = SettingsPage(ctx)
    qtbot.addWidget(page)
    return page


def test_values_persist_through_qsettings(qtbot, ctx, tmp_path):  # noqa: F811
    page = _page(qtbot, ctx)
    page.threads.setValue(2)
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    page.history_days.setValue(30)
    page.context_window.setValue(2048)
    page.output_dir.setText(str(tmp_path / "outputs"))
    with qtbot.waitSignal(ctx.events.settings_changed):
        assert page.save()
    again = Settings().load()  # a fresh QSettings reads the file back
    assert (again.threads, again.theme, again.history_days, again.context_window) == (2, "dark", 30, 2048)
    assert again.output_dir == str(tmp_path / "outputs") and (tmp_path / "outputs").is_dir()


def test_output_folder_that_cannot_be_created_is_refused(qtbot, ctx, tmp_path):  # noqa: F811
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    page = _page(qtbot, ctx)
    page.output_dir.setText(str(blocker / "sub"))
    assert page.save() is False
    assert "cannot be created" in messages(ctx, "error")[-1]
    assert Settings().load().output_dir == ""


def test_corrupted_settings_file_is_reset_with_a_notice(qtbot, atelier_home):
    from desktop.ui.main_window import MainWindow

    atelier_home.mkdir(parents=True, exist_ok=True)
    path = atelier_home / "settings.ini"
    path.write_bytes(b"\x00\x01\xff\xfe[[[ not = an ini\x00 file")
    window = MainWindow()
    qtbot.addWidget(window)
    warnings = messages(window.ctx, "warning")
    assert any("could not be read and was reset to defaults" in w for w in warnings)
    assert (atelier_home / "settings.ini.damaged").read_bytes().startswith(b"\x00\x01")  # nothing lost
    assert window.ctx.settings.load().provider == "auto"
    assert Settings().reset_notice == ""  # reset once; the next start is clean


def test_invalid_values_are_reset_with_a_notice(qtbot, atelier_home):
    atelier_home.mkdir(parents=True, exist_ok=True)
    (atelier_home / "settings.ini").write_text("[runtime]\nthreads=many\n")
    s = Settings()
    assert s.load().threads == 0
    assert "invalid" in s.reset_notice


def test_choosing_a_provider_that_is_not_installed_warns_on_save(qtbot, ctx):  # noqa: F811
    page = _page(qtbot, ctx)
    page.probe_providers()
    qtbot.waitUntil(lambda: page.available is not None, timeout=20000)
    assert "CPU" in page.offered.text()
    missing = "cuda" if "CUDAExecutionProvider" not in page.available else "directml"
    assert "not installed" in page.provider.itemText(page.provider.findData(missing))
    page.provider.setCurrentIndex(page.provider.findData(missing))
    page.save()
    assert any(f"{missing.upper()} is not available" in w and "run on CPU" in w for w in messages(ctx, "warning"))
    assert Settings().load().provider == missing  # kept: the setting may move to a machine that has it


def test_provider_not_installed_falls_back_at_load_with_a_notice(qtbot, ctx, tiny_packs):  # noqa: F811
    import onnxruntime as ort

    from desktop.engines.packs.importers import import_path
    from desktop.settings import AppSettings
    from desktop.ui.engine_slot import EngineSlot

    missing = "cuda" if "CUDAExecutionProvider" not in ort.get_available_providers() else "directml"
    ctx.settings.save(AppSettings(provider=missing))
    pack = import_path(tiny_packs["llama"], Library())
    slot = EngineSlot("text", ctx.settings.runtime, ctx.notifier)
    with qtbot.waitSignal(slot.loaded, timeout=60000) as loaded:
        slot.load(pack.name)
    engine = loaded.args[0]
    assert engine.provider.used == "cpu" and engine.provider.fell_back
    assert any(f"instead of {missing.upper()}" in w for w in messages(ctx, "warning"))
    slot.close()


def test_offline_status_lists_what_was_checked(qtbot, ctx):  # noqa: F811
    page = _page(qtbot, ctx)
    page.run_offline_checks()
    qtbot.waitUntil(lambda: bool(page.offline_results), timeout=20000)
    shown = page.offline_status.text()
    assert shown.startswith("Offline:")
    names = {r.name for r in page.offline_results}
    assert "No network sockets open in this process" in names  # the shell's own check
    assert "Network guard refuses internet sockets" in names  # the app's own checks, through the registry
    for r in page.offline_results:  # every check is listed with what it looked at
        assert f"{r.name}: {r.detail}" in shown


def test_saved_runtime_settings_reach_the_engines(qtbot, ctx):  # noqa: F811
    page = _page(qtbot, ctx)
    page.threads.setValue(1)
    page.context_window.setValue(1024)
    page.save()
    runtime = ctx.settings.runtime()  # what EngineSlot hands open_engine at the next load
    assert (runtime.provider, runtime.threads, runtime.context_window) == ("auto", 1, 1024)
