"""Entry point of the bundled app: one executable, two faces.

`photo-denoiser denoise IN -o OUT` (any CLI subcommand, `--version` or `--help`) runs the command line,
exactly `denoiser ...`; anything else (no arguments, image paths from a file manager's "Open with",
`--smoke-test ...`) opens the window, exactly `denoiser-gui ...`.
"""
from __future__ import annotations

import argparse
import os
import sys

from denoiser.frozen import prepare

CLI_FLAGS = ("--version", "-h", "--help")
GLOBAL_FLAGS = ("-v", "--verbose")


def cli_commands() -> set[str]:
    """The subcommand names the CLI parser really has (some modules add more than one)."""
    from denoiser.cli import SUBCOMMANDS, build_parser

    for action in build_parser()._actions:  # argparse keeps subparsers here; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set(SUBCOMMANDS)


def wants_cli(args: list[str]) -> bool:
    """True when the arguments name a CLI subcommand (after optional global flags) or a CLI-only flag."""
    from denoiser.cli import SUBCOMMANDS

    rest = list(args)
    while rest and rest[0] in GLOBAL_FLAGS:
        rest.pop(0)
    if not rest:
        return len(rest) != len(args)  # bare `-v` is a CLI call; no arguments at all opens the window
    first = rest[0]
    if first in CLI_FLAGS or first in SUBCOMMANDS:
        return True
    if first.startswith("-") or os.sep in first or os.path.exists(first):
        return False  # a window option or a photo: skip building the whole CLI parser (~0.2 s of imports)
    return first in cli_commands()


def main() -> int:
    prepare()
    if wants_cli(sys.argv[1:]):
        from denoiser.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from denoiser.gui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
