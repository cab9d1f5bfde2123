"""Options and helpers shared by the CLI subcommands."""
from __future__ import annotations

import argparse
import sys

from denoiser.core.ensemble import PASSES


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model name (see `denoiser models`) or a .safetensors path")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps (default auto)")
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default 2048)")
    p.add_argument("--passes", type=int, choices=PASSES, default=1,
                   help="quality: average the model over 1, 2, 4 or 8 flipped/rotated views; "
                        "N passes take N times as long (default 1)")


def parse_strength(text: str) -> float | None:
    """'auto' -> None (estimate per image); otherwise a noise level in 0..255."""
    if text.lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"strength must be 'auto' or a number, got {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"strength must be in 0..255, got {value:g}")
    return value


def fail(command: str, message: str) -> None:
    """One clear line on stderr, no traceback."""
    print(f"denoiser {command}: {message}", file=sys.stderr)


def load_denoiser(args: argparse.Namespace, command: str):
    """The engine for --model/--device/--tile, or None after printing why not."""
    from denoiser.core.checkpoint import ModelFileError
    from denoiser.core.engine import DEFAULT_TILE, Denoiser

    try:
        return Denoiser.from_name(args.model, args.device, tile=args.tile or DEFAULT_TILE)
    except (ModelFileError, ValueError, OSError) as exc:
        fail(command, str(exc))
        return None
