"""How much memory a photo will need, known from its header before a pixel is decoded, and how much is free.

A 27 KB PNG can declare 225 megapixels; decoding it would take ~20 GB before anything noticed. The decoders
call check_photo_memory() with the header's size, so such a file is refused at once with the numbers and the
way to allow it, on every path (command line, window, batch).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

# Peak memory per pixel of a whole run (decode, float photo, Auto, tiled denoise with its padded input and
# blend accumulators, tone controls, detail score, encode): the growth of peak RSS per added pixel between a
# 2 MP and an 8 MP `denoiser denoise` run, rounded up so that the estimate errs towards refusing.
BYTES_PER_PIXEL = 100
DEFAULT_BUDGET_SHARE = 0.5  # without --max-memory a photo may need at most this share of the free memory


class MemoryLimitError(ValueError):
    """A photo would need more memory than is free (or than the limit allows)."""


def photo_memory(width: int, height: int) -> int:
    """Bytes a photo of this size is expected to need at the peak of its run."""
    return int(width) * int(height) * BYTES_PER_PIXEL


def available_bytes() -> int | None:
    """Memory this process can still take: the system's available memory, capped by a container's
    (cgroup) limit; None when neither can be read."""
    candidates = [v for v in (_system_available(), _cgroup_available()) if v is not None]
    return min(candidates) if candidates else None


def _system_available() -> int | None:
    try:
        import psutil  # optional: exact on every platform
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap = Path(limit).read_text().strip()
            if cap == "max" or int(cap) >= 1 << 60:
                return None
            return max(0, int(cap) - int(Path(usage).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def check_photo_memory(width: int, height: int, limit: int | None = None) -> None:
    """Raise MemoryLimitError when a width x height photo needs more than `limit` bytes (None: more than
    default_budget(), half of what is free now). The message gives both numbers and how to allow it."""
    need = photo_memory(width, height)
    size = f"a {width} x {height} photo ({width * height / 1e6:.0f} MP) needs about {need / 1e9:.1f} GB of memory"
    if limit is not None:
        if need > limit:
            raise MemoryLimitError(f"{size}, above the limit of {limit / 1e9:.1f} GB; raise it with "
                                   f"--max-memory {math.ceil(need / 1e9)} if the machine has that much")
        return
    budget = default_budget()
    if budget is not None and need > budget:
        raise MemoryLimitError(f"{size}, more than the default budget of {budget / 1e9:.1f} GB (half of the "
                               f"{budget * 2 / 1e9:.1f} GB free, so the machine stays usable); allow it with "
                               f"--max-memory {math.ceil(need / 1e9)} if that much is free (it may then swap or "
                               f"fail), or refuse such photos at once with --max-megapixels")


def default_budget() -> int | None:
    """Memory a photo may need when no limit is given: half of what is free now (None when unknown), so
    one photo never takes the machine from everything else running on it."""
    free = available_bytes()
    return None if free is None else int(free * DEFAULT_BUDGET_SHARE)
