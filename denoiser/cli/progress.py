"""Terminal progress bar backing the core Progress protocol."""
from __future__ import annotations

import sys
import threading
import time

from tqdm import tqdm

from denoiser.core.progress import CancelToken


class TerminalProgress(CancelToken):
    """A tqdm bar that appears only once a task has run for more than `delay` seconds.

    ticking=True is for a step that reports no fractions (Auto's noise estimate): the line shows the
    elapsed time, refreshed twice a second; when stderr is not a terminal one line says what runs."""

    def __init__(self, desc: str = "", unit: str = "%", delay: float = 1.0, position: int = 0,
                 leave: bool = True, ticking: bool = False) -> None:
        super().__init__()
        fmt = "{desc}… {elapsed}" if ticking else "{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}"
        self.bar = tqdm(total=100, desc=desc, unit=unit, delay=delay, position=position,
                        leave=leave and not ticking, file=sys.stderr, bar_format=fmt, disable=None)
        self.started = time.monotonic()
        self._stop = threading.Event()
        if ticking and self.bar.disable:
            print(f"{desc}…", file=sys.stderr, flush=True)
        elif ticking:
            threading.Thread(target=self._tick, name="progress-tick", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self.bar.refresh()

    def report(self, fraction: float, message: str = "") -> None:
        target = max(0.0, min(1.0, fraction)) * 100
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if message:
            self.bar.set_postfix_str(message, refresh=False)

    def close(self) -> None:
        self._stop.set()
        self.bar.close()

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
