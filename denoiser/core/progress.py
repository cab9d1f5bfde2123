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


def time_left(elapsed: float, fraction: float) -> float | None:
    """Seconds left, extrapolated linearly from the time so far (tiles, files and steps take about equal
    time); None while it is too early to tell (under 2 % done or half a second in)."""
    if fraction <= 0.02 or elapsed < 0.5:
        return None
    return max(0.0, elapsed * (1 - fraction) / fraction)


def format_duration(seconds: float) -> str:
    """A clock reading: "1:15", "1:02:05"."""
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def format_eta(elapsed: float, fraction: float) -> str:
    """The time left in words, as every progress line shows it: 'about 10 s left', 'about 3 min left'."""
    left = time_left(elapsed, fraction)
    if left is None:
        return "estimating time left…"
    if left >= 90:
        return f"about {left / 60:.0f} min left"
    return f"about {max(1, round(left))} s left"
