"""Convert a pickle ``.ckpt`` to ``.safetensors``, only when the user asks (``--convert-pickle``).

Unpickling can run code, so it happens in a separate process with ``torch.load(weights_only=True)``
(which refuses anything but tensors and plain containers); this process only ever reads the
``.safetensors`` file the child wrote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from desktop.engines.errors import ExportError

_CHILD = r"""
import sys, torch
from safetensors.torch import save_file
obj = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
if not isinstance(state, dict):
    sys.exit("the file holds no table of weights")
tensors = {k: v.contiguous() for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
if not tensors:
    sys.exit("the file holds no weights")
save_file(tensors, sys.argv[2])
"""


def convert_pickle(path: Path, out_dir: Path, timeout_s: float = 3600) -> Path:
    out = out_dir / (path.stem + ".safetensors")
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(out)], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ExportError(f"Converting '{path.name}' took longer than {timeout_s:.0f} s and was stopped.") from None
    if done.returncode != 0 or not out.is_file():
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1][:300]
        raise ExportError(f"Could not convert the pickle '{path.name}' safely: {last}")
    return out
