"""The process exit statuses of `denoiser` and `denoiser-gui`, in one place (the README's table lists them)."""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command ran, but something failed: a photo of a batch, a model file, a write
    USAGE = 2  # the request cannot run as given (bad option, missing input, no display): nothing was done
    INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C), as shells report it
    TERMINATED = 143  # 128 + SIGTERM
