#!/usr/bin/env bash
# Put Atelier into the desktop's application menu for this user: a .desktop entry that
# points at this bundle, and the icon in the hicolor theme. Run from the unpacked bundle:
#   ./install-desktop-entry.sh            (./install-desktop-entry.sh --remove undoes it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
if [ "${1:-}" = "--remove" ]; then
  rm -f "$apps/atelier.desktop"
  find "$icons" -name atelier.png -path '*/apps/*' -delete 2>/dev/null || true
  echo "removed the Atelier menu entry"; exit 0
fi
mkdir -p "$apps"
# Exec takes a quoted command line; TryExec a bare path
sed -e "s|@EXEC@|\"$here/Atelier\"|g" -e "s|@PATH@|$here/Atelier|g" "$here/atelier.desktop.in" > "$apps/atelier.desktop"
for png in "$here"/_internal/resources/icons/atelier-*.png; do
  size="$(basename "$png" .png)"; size="${size#atelier-}"
  mkdir -p "$icons/${size}x${size}/apps"
  cp "$png" "$icons/${size}x${size}/apps/atelier.png"
done
mkdir -p "$icons/scalable/apps" && cp "$here/_internal/resources/icons/atelier.svg" "$icons/scalable/apps/atelier.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" >/dev/null 2>&1 || true
echo "Atelier is now in your application menu ($apps/atelier.desktop)"
