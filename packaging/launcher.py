"""Entry point of the bundled app: one executable, two faces.

`photo-denoiser denoise IN -o OUT` (any CLI subcommand, `--version` or `--help`) runs the command line,
exactly `denoiser ...`; anything else (no arguments, image paths from a file manager's "Open with",
`--smoke-test ...`) opens the window, exactly `denoiser-gui ...`.
"""
from __future__ import annotations

import sys

from denoiser.frozen import prepare

CLI_FLAGS = ("--version", "-h", "--help")
GLOBAL_FLAGS = ("-v", "--verbose")


def wants_cli(args: list[str]) -> bool:
    """True when the arguments name a CLI subcommand (after optional global flags) or a CLI-only flag."""
    from denoiser.cli import SUBCOMMANDS

    rest = list(args)
    while rest and rest[0] in GLOBAL_FLAGS:
        rest.pop(0)
    if not rest:
        return len(rest) != len(args)  # bare `-v` is a CLI call; no arguments at all opens the window
    return rest[0] in SUBCOMMANDS or rest[0] in CLI_FLAGS


def main() -> int:
    prepare()
    if wants_cli(sys.argv[1:]):
        from denoiser.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from denoiser.gui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
