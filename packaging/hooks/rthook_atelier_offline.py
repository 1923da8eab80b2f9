# PyInstaller runtime hook: runs inside the bundle before main.py and before any bundled
# module is imported. onnxruntime's native telemetry client only obeys ORT_DISABLE_TELEMETRY
# when it is in the environment before the library loads (see desktop/offline/telemetry_switch.py);
# main.py sets it too, this makes the bundle safe even if its start-up order changes.
# A value the user set explicitly is kept (Settings > Offline then says telemetry is on).
import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
