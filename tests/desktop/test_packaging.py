"""The packaging files agree with each other: what the build script and spec refer to exists."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_desktop_entry_is_complete_and_names_our_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive in the Desktop Entry spec
    entry.read(ROOT / "packaging" / "linux" / "atelier.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "Atelier" and d["Terminal"] == "false"
    assert d["Exec"].startswith("@EXEC@")  # filled in with the bundle's path at install time
    assert d["Categories"].endswith(";")
    icons = ROOT / "resources" / "icons"
    assert (icons / f"{d['Icon']}.svg").is_file() and (icons / f"{d['Icon']}-256.png").is_file()


def test_spec_and_scripts_refer_to_files_that_exist():
    spec = (ROOT / "packaging" / "atelier.spec").read_text()
    compile(spec, "atelier.spec", "exec")  # the spec is Python; a syntax error would only show at build time
    for name in ("atelier.ico", "atelier.icns", "atelier-256.png"):
        assert name in spec and (ROOT / "resources" / "icons" / name).is_file()
    assert (ROOT / "packaging" / "windows" / "version_info.txt").is_file()
    build = (ROOT / "scripts" / "build-app").read_text()
    assert "packaging/atelier.spec" in build and "--self-test" in build and "QT_QPA_PLATFORM=offscreen" in build
    for name in ("atelier.desktop", "install-desktop-entry.sh"):
        assert f"packaging/linux/{name}" in build and (ROOT / "packaging" / "linux" / name).is_file()
