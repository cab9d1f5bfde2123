"""`denoiser gui [IMAGE]`: open the desktop window (Qt is imported only when this runs)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoiser.display import display_problem
from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop window")
    p.add_argument("image", nargs="?", type=Path, help="photo (or folder, for a batch) to open")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem:  # before Qt loads: its own message would blame a missing xcb-cursor library
        print(f"denoiser gui: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    from denoiser.gui.app import main

    return main([str(args.image)] if args.image else [])
