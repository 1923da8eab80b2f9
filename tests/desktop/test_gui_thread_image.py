"""The Image studio keeps the GUI thread free while a batch of large pictures is made:
each PNG is encoded and written (0.2-0.5 s at 512 px) and thumbnailed on the job's worker
thread. A 10 ms QTimer on the GUI thread records its longest gap through the real studio
and a real tiny SD pack; the images still land in the store, the gallery and the audit log."""

from __future__ import annotations

import pytest

from desktop.engines.packs.importers import import_path
from desktop.engines.packs.library import Library
from desktop.outputs.image_meta import read_settings
from desktop.outputs.image_store import ImageStore
from desktop.settings import Settings
from desktop.ui.main_window import AppContext
from desktop.ui.notifier import Notifier
from tests.desktop.test_responsiveness import GuiGaps
from tests.engines.test_prefill import gap_limit
from tests.tiny_sd import tiny_sd_pack

pytest.importorskip("transformers")


@pytest.mark.slow  # a 512 px batch takes ~100 s on 2 cores
def test_a_batch_of_512_px_images_keeps_the_gui_ticking(qtbot, cache_dir, atelier_home):
    from desktop.ui.image_studio import ImageStudio

    lib = Library()
    import_path(tiny_sd_pack(cache_dir), lib, name="tiny-sd")
    studio = ImageStudio(AppContext(Settings(), Notifier(), lib))
    qtbot.addWidget(studio)
    studio.resize(1000, 700)
    studio.show()
    qtbot.waitUntil(lambda: studio.slot.engine is not None, timeout=60_000)
    c = studio.controls
    c.prompt.setPlainText("a red apple")
    c.width_box.setValue(512)
    c.height_box.setValue(512)
    c.steps.setValue(1)
    c.batch.setValue(2)
    c.random_seed.setChecked(False)
    c.seed.setText("7")
    added = []
    studio.image_added.connect(added.append)
    with GuiGaps() as gaps, qtbot.waitSignal(studio.job_finished, timeout=300_000) as done:
        studio.generate()
    assert done.args[0].done and len(added) == 2
    assert sorted(map(str, ImageStore().paths())) == sorted(added) == sorted(studio.gallery.paths())
    assert read_settings(added[0])["settings"]["width"] == 512
    icon = studio.gallery.item(0).icon().pixmap(128, 128)
    assert max(icon.width(), icon.height()) == 128
    studio.shutdown()
    limit = gap_limit()
    assert gaps.longest < limit, f"the GUI timer waited {gaps.longest * 1000:.0f} ms (limit {limit * 1000:.0f} ms)"
