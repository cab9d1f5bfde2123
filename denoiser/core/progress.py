"""One progress/cancel path shared by the CLI (terminal bar) and the GUI (Qt signals)."""
from __future__ import annotations

import threading
from typing import Protocol


class Cancelled(Exception):
    """Raised at a safe point when the user asked to stop."""


class Progress(Protocol):
    def report(self, fraction: float, message: str = "") -> None: ...

    def check_cancelled(self) -> None: ...


class NullProgress:
    """Default: reports nowhere, never cancels."""

    def report(self, fraction: float, message: str = "") -> None:
        pass

    def check_cancelled(self) -> None:
        pass


class CancelToken:
    """Thread-safe flag-backed progress; subclass or wrap to forward reports."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def report(self, fraction: float, message: str = "") -> None:
        pass

    def check_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by user")


class SubProgress:
    """Maps a child task's 0..1 onto [start, end] of a parent progress."""

    def __init__(self, parent: Progress, start: float, end: float) -> None:
        self.parent, self.start, self.end = parent, start, end

    def report(self, fraction: float, message: str = "") -> None:
        self.parent.report(self.start + (self.end - self.start) * fraction, message)

    def check_cancelled(self) -> None:
        self.parent.check_cancelled()
