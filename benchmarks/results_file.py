"""One way for benchmarks to add entries to a shared results file: read, update and write it under a lock on
the results folder, so runs in parallel keep each other's entries (each writes atomically)."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from denoiser.core.files import atomic_write_bytes


def merge_entries(path: Path, entries: dict[str, Any]) -> dict[str, Any]:
    """Add `entries` (key -> JSON value) to the JSON object in `path` and return the whole object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results.update(entries)
        atomic_write_bytes(path, json.dumps(results, indent=1, ensure_ascii=False).encode())
        return results
    finally:
        os.close(fd)
