"""How much memory a load may take, and refusing one that would not fit.

Users' top complaint after "offline apps phone home" is the machine freezing while a
model too large for it loads. So before any session is created the engine load path
compares the pack's estimate with the memory the OS can give now (MemAvailable on
Linux, the free physical memory on Windows) and refuses, with both figures, a pack that
would not fit. Stdlib only (no psutil).
"""

from __future__ import annotations

import os
import sys

from desktop.engines.errors import ResourceError

SKIP_ENV = "ATELIER_SKIP_MEMORY_CHECK"  # "1": the user knows better (e.g. plenty of swap)
HEADROOM = 0.9  # leave the OS and the window a tenth of what is free


def available_memory_bytes() -> int | None:
    """Memory available to a new allocation now, or None when the OS does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32":
        return _windows_available()
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _windows_available() -> int | None:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return None
    return int(status.ullAvailPhys)


def estimated_load_bytes(pack) -> int:
    """The pack's own estimate, but never less than its weights: a manifest that
    under-declares cannot talk us into loading more than fits."""
    return max(int(pack.estimated_ram_bytes()), int(pack.size_bytes))


def human(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_pack_fits(pack, available: int | None = None) -> None:
    """Raise ResourceError when loading ``pack`` would not fit in available memory."""
    if os.environ.get(SKIP_ENV) == "1":
        return
    have = available_memory_bytes() if available is None else available
    if not have:
        return  # the OS does not tell us: do not guess
    need = estimated_load_bytes(pack)
    if need > have * HEADROOM:
        raise ResourceError(
            f"Loading '{pack.name}' needs about {human(need)} of memory, but only {human(have)} is available now. "
            "Close other apps, or choose a smaller or more compressed (int8/int4) version of this model."
        )
