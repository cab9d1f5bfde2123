"""Command line: argument parsing and terminal progress only; the work is in denoiser.core."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from importlib import import_module

from denoiser.exit_codes import ExitCode

# Subcommand modules, each exposing add_parser(subparsers) that sets `func(args) -> int`.
SUBCOMMANDS = ("denoise", "batch", "models", "eval", "train", "finetune", "gui")



def build_parser() -> argparse.ArgumentParser:
    from denoiser import __version__

    parser = argparse.ArgumentParser(prog="denoiser", description="Remove noise from photographs.")
    parser.add_argument("--version", action="version", version=f"denoiser {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = import_module(f"denoiser.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"denoiser.cli.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
        if name == "train":
            module.add_pack_parser(sub)
            module.add_estimator_parser(sub)
            module.add_raw_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed as \xNN, never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)  # also when configured
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.USAGE
    from denoiser.cli.common import Terminated, raise_terminated

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except Terminated:
        print("denoiser: terminated", file=sys.stderr)
        return ExitCode.TERMINATED
    except KeyboardInterrupt:
        print("denoiser: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
