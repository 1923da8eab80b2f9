"""What this machine has, for the welcome screen and the self-test header. Qt-free.

Everything is read locally (os, /proc, the GPU vendor's own command-line tool when it is
installed); nothing here touches the network. Slow parts (importing onnxruntime, running
nvidia-smi) are meant to run in a worker.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

TOOL_TIMEOUT_S = 3


@dataclass
class SystemInfo:
    os_name: str
    cpu_name: str
    cpu_cores: int
    ram_bytes: int
    providers: list[str] = field(default_factory=list)  # onnxruntime's names
    gpus: list[str] = field(default_factory=list)


def cpu_name() -> str:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_bytes() -> int:
    if sys.platform == "win32":
        class MemoryStatus(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong), ("avail", ctypes.c_ulonglong),
                        ("total_page", ctypes.c_ulonglong), ("avail_page", ctypes.c_ulonglong), ("total_virtual", ctypes.c_ulonglong),
                        ("avail_virtual", ctypes.c_ulonglong), ("avail_extended", ctypes.c_ulonglong)]  # fmt: skip

        status = MemoryStatus()
        status.length = ctypes.sizeof(MemoryStatus)
        ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
        return int(status.total)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def gpu_names() -> list[str]:
    """GPU names from the vendor tools that are present; [] when none can be read."""
    names: list[str] = []
    if shutil.which("nvidia-smi"):
        names += _tool_lines(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
    if not names and sys.platform.startswith("linux"):
        for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
            for line in info.read_text(errors="replace").splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
    if not names and sys.platform == "win32":
        names += _tool_lines(["powershell", "-NoProfile", "-Command", "(Get-CimInstance Win32_VideoController).Name"])
    if not names and sys.platform == "darwin":
        names += [ln.split(":", 1)[1].strip() for ln in _tool_lines(["system_profiler", "SPDisplaysDataType"]) if "Chipset Model" in ln]
    return names


def _tool_lines(cmd: list[str]) -> list[str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def collect(with_runtime: bool = True) -> SystemInfo:
    """Everything at once; ``with_runtime`` imports onnxruntime to list its providers."""
    info = SystemInfo(f"{platform.system()} {platform.release()}", cpu_name(), os.cpu_count() or 1, ram_bytes())
    if with_runtime:
        from desktop.engines.providers import available_providers

        info.providers = available_providers()
    info.gpus = gpu_names()
    return info
