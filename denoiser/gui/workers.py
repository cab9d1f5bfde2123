"""Thread plumbing only: run a plain function in a QThreadPool and report back through Qt signals.

No business logic here: a Job calls `fn(*args, progress=token)`, where fn is a core function or a thin
glue function from gui/jobs.py. Every exception travels to the window's one error handler.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from denoiser.core.progress import Cancelled, CancelToken

log = logging.getLogger(__name__)


class JobSignals(QObject):
    """Lives in the GUI thread; emitting from the worker queues the call to the GUI thread."""

    progress = Signal(float, str)
    result = Signal(object)
    error = Signal(object)  # the exception; the traceback is logged
    cancelled = Signal()
    finished = Signal()
    event = Signal(str, object)  # SignalProgress.post: (kind, payload)


class SignalProgress(CancelToken):
    """The core Progress protocol backed by a job's signals; cancel() is thread-safe (CancelToken).

    `post(kind, payload)` sends anything else a long job has to say (a batch's per-file status, a
    fine-tune step) to the GUI thread through the same queued signals."""

    def __init__(self, signals: JobSignals) -> None:
        super().__init__()
        self._signals = signals

    def report(self, fraction: float, message: str = "") -> None:
        self._signals.progress.emit(float(fraction), message)

    def post(self, kind: str, payload: object = None) -> None:
        self._signals.event.emit(kind, payload)


class Job(QRunnable):
    """One call of `fn` on a pool thread. Keep a reference until `finished` (the window does)."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", keep_cancelled_result: bool = False,
                 **kwargs: Any) -> None:
        """keep_cancelled_result: a result returned after Cancel is still delivered (a folder job's partial
        summary); by default it is stale and `cancelled` is sent instead."""
        super().__init__()
        self.keep_cancelled_result = keep_cancelled_result
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = JobSignals()
        self.token = SignalProgress(self.signals)
        self.started_at = 0.0
        self.done = False

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:
        self.started_at = time.monotonic()
        outcome, payload = "result", None
        try:
            self.token.check_cancelled()  # cancelled while queued: never start
            payload = self.fn(*self.args, progress=self.token, **self.kwargs)
        except Cancelled:
            outcome = "cancelled"
        except Exception as exc:
            log.debug("job %s failed:\n%s", self.name, traceback.format_exc())
            outcome, payload = "error", exc
        if outcome == "result" and self.token.cancelled and not self.keep_cancelled_result:
            outcome = "cancelled"  # cancelled after the last check: the result is stale
        self.done = True  # before the signals: a slot may look at it
        try:
            if outcome == "result":
                self.signals.result.emit(payload)
            elif outcome == "error":
                self.signals.error.emit(payload)
            else:
                self.signals.cancelled.emit()
            self.signals.finished.emit()
        except RuntimeError:  # the application is shutting down and took the signals' object with it
            log.debug("job %s finished after its listeners were gone", self.name)


class JobRunner(QObject):
    """A one-thread pool (jobs run in order, never two torch runs at once) that keeps its jobs alive."""

    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._jobs: list[Job] = []

    def start(self, job: Job) -> Job:
        self._jobs.append(job)
        job.signals.finished.connect(lambda j=job: self._forget(j))
        self.pool.start(job)
        return job

    def _forget(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)

    def idle(self) -> bool:
        """No job running or queued."""
        return not any(not j.done for j in self._jobs)

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)
