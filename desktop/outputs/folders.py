"""Where the studios keep what they make: the Settings' default output folder, or the
data folder when none is set (Qt-free).

The image gallery lives in ``<folder>/images``, spoken clips in ``<folder>/clips`` and
their trash beside them (a delete is a rename, so it must stay on the same disk). A
chosen folder that is not there now (an unplugged drive) is not created behind the
person's back: the data folder is used and the choice stays saved for when it returns.
The command line keeps its explicit ``--out``.
"""

from __future__ import annotations

import os
from pathlib import Path

from desktop.engines.packs.library import data_dir

IMAGES, CLIPS, TRASH = "images", "clips", "trash"


def output_base(output_dir: str | os.PathLike = "") -> Path:
    """The folder the studios save under for the ``output_dir`` setting ('' = none)."""
    if output_dir:
        chosen = Path(output_dir).expanduser()
        if chosen.is_dir():
            return chosen
    return data_dir()


def studio_folder(kind: str, output_dir: str | os.PathLike = "") -> Path:
    """``kind`` is IMAGES or CLIPS."""
    return output_base(output_dir) / kind


def trash_folders(output_dir: str | os.PathLike = "") -> list[Path]:
    """Every trash a delete may have used: the data folder's and the output folder's."""
    folders = [data_dir() / TRASH, output_base(output_dir) / TRASH]
    return list(dict.fromkeys(folders))
