"""Options and helpers shared by the CLI subcommands."""
from __future__ import annotations

import argparse
import math
import sys

from denoiser.core.ensemble import PASSES


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model name (see `denoiser models`) or a .safetensors path")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps (default auto)")
    p.add_argument("--tile", type=positive_int, default=None,
                   help="tile size in pixels, at least 256 (default 2048); smaller tiles use less memory")
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
    if not 0 <= value <= 255:  # also refuses nan
        raise argparse.ArgumentTypeError(f"strength must be in 0..255, got {value:g}")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (0 or a negative number would silently mean 'default' or 'nothing')."""
    return int(_positive(text, int, "a whole number"))


def positive_float(text: str) -> float:
    """A finite number above 0 (nan, inf, 0 and negatives are refused here, not deep in the work)."""
    return float(_positive(text, float, "a number"))


def _positive(text: str, kind: type, what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be {what} above 0, got {text!r}")
    return value


def parse_quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"quality must be an integer 1..100, got {text!r}")
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



def _argument_type(parse):
    """An argparse type from a core parser that raises ValueError with the message to show."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def add_control_options(p: argparse.ArgumentParser) -> None:
    """--luma/--chroma/--detail (core.tone); every default is the plain run."""
    from denoiser.core.tone import AUTO, parse_component, parse_detail

    for name, what in (("luma", "luminance (brightness) noise"), ("chroma", "colour noise")):
        p.add_argument(f"--{name}", type=_argument_type(parse_component), default=AUTO, metavar="auto|SIGMA|Kx",
                       help=f"{what}: auto (the main run, default), a noise level 0..255 for its own run, "
                            f"or a fraction 0..1 of the removal, e.g. 0.5x; 0x leaves it untouched")
    p.add_argument("--detail", type=_argument_type(parse_detail), default=0.0, metavar="PERCENT",
                   help="recover detail: return this share (0..100, default 0) of the removed signal, "
                        "more on edges and texture; 100 returns the input")


def controls_from(args: argparse.Namespace):
    from denoiser.core.tone import Controls

    return Controls(luma=args.luma, chroma=args.chroma, detail=args.detail)
