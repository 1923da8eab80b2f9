"""Settings survive a restart: chosen in one process through the Settings page's own
widgets, read back in another; values an older build wrote under the unreadable
``[%General]`` section are moved; chat retention chosen before a restart is applied at
start; Save-as dialogs open in the chosen output folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from desktop.outputs.chat_store import ChatStore
from desktop.settings import AppSettings, Settings

ROOT = Path(__file__).resolve().parents[2]

CHOOSE = """
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop.engines.packs.library import Library
from desktop.settings import AppSettings, Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from desktop.ui.settings_page import SettingsPage
page = SettingsPage(AppContext(Settings(), Notifier(), Library()))
page.theme.setCurrentIndex(page.theme.findData("dark"))
page.history_days.setValue(30)
page.output_dir.setText(OUT)
page.threads.setValue(3)
page.context_window.setValue(2048)
page.provider.setCurrentIndex(page.provider.findData("cpu"))
assert page.save()
"""

READ = """
import json
from PySide6.QtCore import QCoreApplication
app = QCoreApplication([])
from desktop.settings import AppSettings, Settings
print(json.dumps(Settings().load().__dict__))
"""


def _python(code: str, home: Path) -> str:
    env = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_every_setting_survives_a_restart_across_processes(atelier_home, tmp_path):
    out = tmp_path / "my pictures"
    _python(f"OUT = {str(out)!r}\n" + CHOOSE, atelier_home)
    values = json.loads(_python(READ, atelier_home).strip().splitlines()[-1])
    assert values == {"provider": "cpu", "threads": 3, "output_dir": str(out), "theme": "dark", "history_days": 30, "context_window": 2048}
    assert "[%General]" not in (atelier_home / "settings.ini").read_text()


def test_values_saved_under_the_broken_general_group_are_moved(atelier_home):
    atelier_home.mkdir(parents=True, exist_ok=True)
    # what older builds wrote: QSettings put the ``general/`` group in this section
    (atelier_home / "settings.ini").write_text("[%General]\nhistory_days=30\noutput_dir=/tmp/out\ntheme=dark\n\n[runtime]\nthreads=2\n")
    values = json.loads(_python(READ, atelier_home).strip().splitlines()[-1])
    assert (values["history_days"], values["output_dir"], values["theme"], values["threads"]) == (30, "/tmp/out", "dark", 2)
    assert "General" not in (atelier_home / "settings.ini").read_text()  # moved, not copied
    # and a later start reads the same
    assert json.loads(_python(READ, atelier_home).strip().splitlines()[-1])["history_days"] == 30


def test_chosen_retention_is_applied_at_the_next_start(qtbot, atelier_home):
    from desktop.engines.packs.library import Library
    from desktop.ui.chat import ChatStudio
    from desktop.ui.main_window import AppContext
    from desktop.ui.notifier import Notifier

    # chosen in an earlier run of the app (in-process, QSettings's cache hides the bug)
    _python("from desktop.settings import AppSettings, Settings\nSettings().save(AppSettings(history_days=30))", atelier_home)
    store = ChatStore(atelier_home / "history.sqlite3")
    old, recent = store.create("old"), store.create("recent")
    store.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time() - 31 * 86400, old.id))
    studio = ChatStudio(AppContext(Settings(), Notifier(), Library()), store=store)  # a fresh read of the file
    qtbot.addWidget(studio)
    assert [c.title for c in store.conversations()] == [recent.title]


def test_save_dialogs_open_in_the_output_folder_then_the_last_one_used(atelier_home, tmp_path):
    s = Settings()
    assert s.save_folder() == os.path.expanduser("~")  # never the app's data folder
    s.remember_save(tmp_path / "elsewhere" / "x.png")
    (tmp_path / "elsewhere").mkdir()
    assert s.save_folder() == str(tmp_path / "elsewhere")
    out = tmp_path / "out"
    out.mkdir()
    s.save(AppSettings(output_dir=str(out)))
    assert Settings().save_folder() == str(out)
