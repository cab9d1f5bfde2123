"""File-system helpers shared by the modules that write files (photos, model files)."""
from __future__ import annotations

from pathlib import Path


def process_umask() -> int:
    """The process umask without changing it (os.umask would, racing other threads that create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
