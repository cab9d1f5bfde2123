"""What a Dask worker runs for `batch --cluster`: one photo per task through core.pipeline.process_photo.

Everything a task receives is plain (PhotoTask, PhotoOptions, the model's hash, the run's cancel event name);
the engines live in this process for its lifetime (one EngineCache per model hash, so a worker opens a model
once however many photos and batches it serves). `identity` is what the client compares before any work:
the app version, the model file's bytes (SHA-256), its heavy-noise expert's and Auto's estimator.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from denoiser.core.files import file_sha256
from denoiser.core.model.profiles import AUTO_MODEL
from denoiser.core.pipeline import EngineCache, PhotoOptions, PhotoResult, PhotoTask, process_photo
from denoiser.core.progress import Cancelled

_ENGINES: dict[str, EngineCache] = {}
_LOCK = threading.Lock()
CANCEL_POLL = 1.0  # seconds between looks at the run's cancel event (one scheduler round trip each)


def model_file(model: str | None) -> Path:
    """The file a model name (or path) stands for on this machine; None/"auto": the shipped default."""
    from denoiser.core.model.foreign import foreign_cards, is_foreign
    from denoiser.core.model.registry import find_model

    name = None if model in (None, "", AUTO_MODEL) else model
    if name is not None and Path(name).is_file():
        return Path(name)
    if name is not None and is_foreign(name):
        return Path(foreign_cards()[name]["path"])
    return Path(find_model(name).path)


@lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, computed again only when its size or time changes."""
    return file_sha256(Path(path))


def model_digest(model: str | None) -> str:
    """SHA-256 of the model file's bytes ("missing: <reason>" when this machine has no such model)."""
    try:
        path = model_file(model)
        st = path.stat()
    except (OSError, ValueError) as exc:
        return f"missing: {exc}"
    return _digest(str(path), st.st_size, st.st_mtime_ns)


def expert_digest(model: str | None) -> str:
    """SHA-256 of the heavy-noise expert the model runs with (core.model.experts.expert_file), "none" where there
    is none."""
    from denoiser.core.model.experts import expert_file
    from denoiser.core.model.file import read_card

    try:
        weights = model_file(model)
        path = expert_file(weights, read_card(weights).training)
        if path is None:
            return "none"
        st = path.stat()
    except (OSError, ValueError):
        return "none"
    return _digest(str(path), st.st_size, st.st_mtime_ns)


def identity(model: str | None) -> dict[str, object]:
    """What must agree between the client and every worker (and where the worker runs, for messages)."""
    from denoiser import __version__
    from denoiser.core.noise.level import estimator_version

    return {"app": __version__, "model": model_digest(model), "expert": expert_digest(model),
            "estimator": estimator_version(), "host": socket.gethostname(), "pid": os.getpid()}


def engines_for(digest: str) -> EngineCache:
    with _LOCK:
        if not _ENGINES:
            _tune_allocator()
            _stop_profiler()
        return _ENGINES.setdefault(digest, EngineCache())


def _stop_profiler() -> None:
    """Stop the worker's statistical profiler (it samples every thread's stack every 10 ms: CPU a photo
    needs more). Outside a worker, nothing to stop."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    for name in ("profile", "profile-cycle"):
        if name in worker.periodic_callbacks:  # stopped on the worker's own event loop (tornado is not thread-safe)
            worker.loop.add_callback(worker.periodic_callbacks[name].stop)


def _tune_allocator() -> None:
    """Undo what Dask's nanny's MALLOC_TRIM_THRESHOLD_=65536 does to a denoiser: with it glibc hands freed
    memory back at once and fixes its mmap threshold, so every tile's activations fault their pages in
    again (a 1 MP denoise here: 2.6x the page faults, 2.4x the system time of the same call in a plain
    process). A trim threshold of 256 MB and the 32 MB mmap threshold glibc reaches on its own restore the
    plain process's figures. Linux/glibc only; elsewhere nothing is changed."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return


def open_model(options: PhotoOptions, digest: str) -> str:
    """Open the run's model on this worker before its first photo (a model that cannot load fails the run
    up front, and the first photo's time is the photo's own); returns the engine's device."""
    return engines_for(digest).engine(options).device_name


class _TaskProgress:
    """Cancel checks for a task: the run's Dask Event, looked at no more than once per CANCEL_POLL."""

    def __init__(self, event_name: str) -> None:
        self.event_name, self._next = event_name, 0.0
        self._event: Any = None  # distributed.Event, made on the first look

    def report(self, fraction: float, message: str = "") -> None:
        pass

    def check_cancelled(self) -> None:
        now = time.monotonic()
        if not self.event_name or now < self._next:
            return
        self._next = now + CANCEL_POLL
        from distributed import Event, get_client

        if self._event is None:
            self._event = Event(self.event_name, client=get_client())
        if self._event.is_set():
            raise Cancelled("the batch was stopped")


def run_photo(task: PhotoTask, options: PhotoOptions, digest: str, cancel_event: str = "") -> PhotoResult:
    """One photo on this worker (the task the client submits for each plan item)."""
    from distributed import get_worker

    try:
        worker = get_worker().address
    except ValueError:  # called outside a worker (tests, a debugger)
        worker = f"{socket.gethostname()}:{os.getpid()}"
    progress = _TaskProgress(cancel_event)
    try:
        result = process_photo(task, options, engines_for(digest), progress)
    except Cancelled:
        result = PhotoResult("skipped", "cancelled")
    result.worker = worker
    return result
