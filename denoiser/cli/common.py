"""Options and helpers shared by the CLI subcommands."""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from denoiser.core.inference.ensemble import PASSES
from denoiser.core.inference.precision import AUTO, PRECISION_CHOICES
from denoiser.core.progress import CancelToken
from denoiser.exit_codes import ExitCode


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled exactly like Ctrl-C (temp files removed, reports written), exit status 143."""


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="auto (default: the camera profile matching each photo's EXIF, else the shipped "
                        "default), a model name (see `denoiser models`) or a .safetensors path")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps (default auto)")
    p.add_argument("--tile", type=positive_int, default=None,
                   help="tile size in pixels, at least 256 (default 1024); smaller tiles use less memory")
    p.add_argument("--passes", type=int, choices=PASSES, default=1,
                   help="quality: average the model over 1, 2, 4 or 8 flipped/rotated views; "
                        "N passes take N times as long (default 1)")


def add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=AUTO,
                   help="auto (default): int8 on the CPU where the model has a matching INT8 build (the shipped "
                        "model does) and ONNX Runtime is installed, else fp32; int8: that build, about twice as "
                        "fast (quality Fast), an error where there is none; fp32: the weights as they are")


def parse_strength(text: str) -> float | None:
    """'auto' -> None (estimate per image); otherwise a noise level in 0..255."""
    if text.lower() == "auto":
        return None
    try:
        return noise_level(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"strength must be 'auto' or {exc}") from None


def noise_level(text: str) -> float:
    """A noise level (sigma) in 0..255."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a noise level in 0..255, got {text!r}") from None
    if not 0 <= value <= 255:  # also refuses nan
        raise argparse.ArgumentTypeError(f"a noise level in 0..255, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (0 or a negative number would silently mean 'default' or 'nothing')."""
    return int(_positive(text, int, "a whole number"))


def non_negative_int(text: str) -> int:
    """An integer of 0 or more (a negative count would silently mean 'all but the last')."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text!r}")
    return value


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


def model_name(text: str) -> str:
    """A valid model name (core.model.store.check_name: a plain file stem), refused at the parser."""
    from denoiser.core.model.store import ModelStoreError, check_name

    try:
        return check_name(text)
    except ModelStoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_memory_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", type=positive_float, default=None, metavar="GB",
                   help="memory a photo may need (default: half of what is free when it is opened, so the "
                        "machine stays usable); a larger photo is refused before it is decoded")


DNG_HELP = ('a camera raw\'s DNG: "linear" (demosaiced and denoised, as Lightroom\'s Enhanced DNG; default) or '
            '"cfa" (the denoised mosaic, for your raw editor\'s own demosaic)')


def memory_limit(args: argparse.Namespace) -> int | None:
    """--max-memory in bytes, or None (half of the free memory decides: core.io.memory.default_budget)."""
    return None if args.max_memory is None else int(args.max_memory * 1e9)


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
    from denoiser.core.inference.engine import open_denoiser
    from denoiser.core.model.file import ModelFileError

    try:
        model = None if args.model == "auto" else args.model  # camera profiles are chosen per photo
        return open_denoiser(model, args.device, tile=args.tile, precision=getattr(args, "precision", "fp32"))
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
    """--luma/--chroma/--detail (core.inference.controls); every default is the plain run."""
    from denoiser.core.inference.controls import AUTO, parse_component, parse_detail

    for name, what in (("luma", "luminance (brightness) noise"), ("chroma", "colour noise")):
        p.add_argument(f"--{name}", type=_argument_type(parse_component), default=AUTO, metavar="auto|SIGMA|Kx",
                       help=f"{what}: auto (the main run, default), a noise level 0..255 for its own run, "
                            f"or a fraction 0..1 of the removal, e.g. 0.5x; 0x leaves it untouched")
    p.add_argument("--detail", type=_argument_type(parse_detail), default=0.0, metavar="PERCENT",
                   help="recover detail: return this share (0..100, default 0) of the removed signal, "
                        "more on edges and texture; 100 returns the input")


def controls_from(args: argparse.Namespace):
    from denoiser.core.inference.controls import Controls

    return Controls(luma=args.luma, chroma=args.chroma, detail=args.detail)


@contextmanager
def signals_stop(token: CancelToken, message: str) -> Iterator[list[int]]:
    """The first Ctrl-C or SIGTERM asks `token` to stop at the next safe point (and says so); a second
    aborts at once. Yields the list of signals received, for stopped_status()."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if token.cancelled:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        received.append(signum)
        token.cancel()
        print(f"\n{message}", file=sys.stderr, flush=True)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield received
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stopped_status(received: list[int]) -> int:
    return ExitCode.TERMINATED if received and received[0] == signal.SIGTERM else ExitCode.INTERRUPTED
