"""Atelier desktop app: a private generative studio that runs ONNX packs offline."""

import os as _os

__version__ = "0.1.0"

# onnxruntime's native telemetry client obeys only this, read when the library loads; set
# here too so entry points other than main.py (python -m desktop.defaults, bench scripts)
# import onnxruntime with it. main.py still sets it first (desktop/offline/telemetry_switch.py).
# A value the user set is kept.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
