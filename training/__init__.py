"""Recipes that train Atelier's own image packs on a CPU (see each module's docstring).

Every recipe is reproducible (fixed seeds, fixed step counts), resumable (checkpoints),
and logs to a file; the trained checkpoint is then exported by ``exporters.image.ours``
through the ordinary ``run_export`` pipeline. Data comes from Debian packages, never a hub.
"""
