"""User settings persisted with QSettings, read through one small typed facade.

A corrupted settings file is reset with a notice rather than crashing start-up.

The app-wide choices live under ``preferences/``: QSettings writes a group named
``general`` as the INI section ``[%General]`` and reads it back as ``General``, so values
once saved under ``general/`` were never found again. Those are moved on start.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from PySide6.QtCore import QSettings

from desktop.engines.providers import CHOICES, RuntimeSettings, max_threads

ORG, APP = "Atelier", "Atelier"
PREFS = "preferences"
LAST_SAVE_KEY = "paths/last_save_folder"
# what older builds wrote under the unreadable ``general/`` group
_MOVED_FROM_GENERAL = ("output_dir", "theme", "history_days")


def _qsettings() -> QSettings:
    home = os.environ.get("ATELIER_HOME")
    if home:  # tests and CI keep settings beside their throwaway library
        return QSettings(os.path.join(home, "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


@dataclass
class AppSettings:
    provider: str = "auto"
    threads: int = 0
    output_dir: str = ""
    theme: str = "system"  # system | light | dark
    history_days: int = 0  # 0 keeps history forever
    context_window: int = 4096


def _looks_corrupted(q: QSettings) -> bool:
    """QSettings reads many damaged INI files without complaint (binary junk comes back
    as odd keys), so also check the bytes: an INI file is UTF-8 text without NULs, and
    junk that parses shows up as an empty key."""
    if q.status() != QSettings.Status.NoError:
        return True
    path = q.fileName()
    if q.format() == QSettings.Format.IniFormat and os.path.isfile(path):
        try:
            raw = open(path, "rb").read(1 << 20)
            raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return True
        if b"\0" in raw:
            return True
    return any(not key for key in q.allKeys())


class Settings:
    def __init__(self):
        self.q = _qsettings()
        self.reset_notice = ""
        if _looks_corrupted(self.q):
            backup = self._keep_damaged_copy()
            self.q.clear()
            self.q.sync()
            kept = f" The damaged file was kept as {backup}." if backup else ""
            self.reset_notice = f"Your settings file could not be read and was reset to defaults.{kept}"
        self._migrate_general_group()

    def _migrate_general_group(self) -> None:
        """Keep what a person chose in an older build: QSettings lists those keys as
        ``General/<key>`` (its name for the ``[%General]`` section)."""
        moved = False
        for key in _MOVED_FROM_GENERAL:
            old = f"General/{key}"
            if self.q.contains(old):
                if not self.q.contains(f"{PREFS}/{key}"):
                    self.q.setValue(f"{PREFS}/{key}", self.q.value(old))
                self.q.remove(old)
                moved = True
        if moved:
            self.q.sync()

    def load(self) -> AppSettings:
        d = AppSettings()
        try:
            provider = str(self.q.value("runtime/provider", d.provider))
            values = AppSettings(
                provider=provider if provider in CHOICES else d.provider,
                threads=max(0, int(self.q.value("runtime/threads", d.threads))),
                output_dir=str(self.q.value(f"{PREFS}/output_dir", d.output_dir) or ""),
                theme=str(self.q.value(f"{PREFS}/theme", d.theme)),
                history_days=max(0, int(self.q.value(f"{PREFS}/history_days", d.history_days))),
                context_window=max(256, int(self.q.value("text/context_window", d.context_window))),
            )
        except (TypeError, ValueError):
            self.reset_notice = "Some settings were invalid and were reset to defaults."
            self.q.clear()
            values = d
        if values.provider != provider:
            self.reset_notice = f"Unknown execution provider '{provider}' in settings; using auto."
        if values.threads > max_threads():  # an edited or copied settings file: 100,000 threads crash the runtime
            self.reset_notice = f"{values.threads} threads is more than this machine can use (at most {max_threads()}); using automatic."
            values.threads = 0
        return values

    def save(self, s: AppSettings) -> None:
        self.q.setValue("runtime/provider", s.provider)
        self.q.setValue("runtime/threads", s.threads)
        self.q.setValue(f"{PREFS}/output_dir", s.output_dir)
        self.q.setValue(f"{PREFS}/theme", s.theme)
        self.q.setValue(f"{PREFS}/history_days", s.history_days)
        self.q.setValue("text/context_window", s.context_window)
        self.q.sync()

    def _keep_damaged_copy(self) -> str:
        path = self.q.fileName()
        if not os.path.isfile(path):
            return ""
        backup = path + ".damaged"
        try:
            shutil.copyfile(path, backup)
        except OSError:
            return ""
        return backup

    def runtime(self) -> RuntimeSettings:
        s = self.load()
        return RuntimeSettings(provider=s.provider, threads=s.threads, context_window=s.context_window)

    def save_folder(self) -> str:
        """Where a "Save as…" dialog opens: the default output folder when one is set,
        else the folder last saved to, else the home folder (never the app's data folder,
        which a person should not have to dig through)."""
        chosen = self.load().output_dir
        for folder in (chosen, str(self.q.value(LAST_SAVE_KEY, "") or "")):
            if folder and os.path.isdir(os.path.expanduser(folder)):
                return os.path.expanduser(folder)
        return os.path.expanduser("~")

    def remember_save(self, path: str | os.PathLike) -> None:
        self.set_value(LAST_SAVE_KEY, os.path.dirname(os.path.abspath(path)))

    def value(self, key: str, default=None):
        return self.q.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.q.setValue(key, value)
        self.q.sync()  # a crash or kill after this call must not lose the choice
