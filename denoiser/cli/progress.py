"""Terminal progress bar backing the core Progress protocol."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

from denoiser.core.progress import CancelToken


class TerminalProgress(CancelToken):
    """A tqdm bar that appears only once a task has run for more than `delay` seconds."""

    def __init__(self, desc: str = "", unit: str = "%", delay: float = 1.0, position: int = 0,
                 leave: bool = True) -> None:
        super().__init__()
        self.bar = tqdm(total=100, desc=desc, unit=unit, delay=delay, position=position, leave=leave,
                        file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}",
                        disable=None)
        self.started = time.monotonic()

    def report(self, fraction: float, message: str = "") -> None:
        target = max(0.0, min(1.0, fraction)) * 100
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if message:
            self.bar.set_postfix_str(message, refresh=False)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "TerminalProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
