"""Guards for running as a frozen (PyInstaller) application.

A bundled app differs from `python -m denoiser` in three ways that bite at run time:
- multiprocessing re-executes the *bundle executable* for each worker, which must recognise that and run
  the worker instead of opening another window (`multiprocessing.freeze_support`);
- a windowed build (Windows `console=False`, macOS .app) starts with `sys.stdout`/`sys.stderr` set to
  None, so any print, logging handler or tqdm bar raises AttributeError;
- data files live under `sys._MEIPASS`, not next to the source (denoiser.core.resources handles that).
This module is import-light (no torch, no Qt) so the launcher can call `prepare()` first thing.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path


def is_frozen() -> bool:
    """True inside a PyInstaller bundle (one-folder or one-file)."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def bundle_dir() -> Path | None:
    """The folder holding the bundle's data (`_internal/` in one-folder builds), or None from source."""
    return Path(sys._MEIPASS) if is_frozen() else None  # type: ignore[attr-defined]


def executable_dir() -> Path | None:
    """The folder holding the bundle's executable (what a desktop file's Exec points into)."""
    return Path(sys.executable).resolve().parent if is_frozen() else None


def ensure_std_streams() -> list[str]:
    """Replace missing stdout/stderr/stdin with os.devnull; returns the names replaced.

    Windowed builds have no console, so these are None; writing to them must be a quiet no-op rather
    than a crash in some logging or progress-bar call deep in a library.
    """
    replaced = []
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name, None) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 - lives for the process
            replaced.append(name)
    return replaced


def prepare() -> None:
    """Call first in every frozen entry point, before importing torch or Qt.

    freeze_support() returns immediately in a normal process and, in a multiprocessing child started by
    a frozen executable, runs the child's work and exits, so it must come before any app start-up.
    """
    ensure_std_streams()
    multiprocessing.freeze_support()
