"""Entry point of the bundled app: one executable, two faces.

`photo-denoiser denoise IN -o OUT` (any CLI subcommand, `--version` or `--help`) runs the command line,
exactly `denoiser ...`; anything else (no arguments, image paths from a file manager's "Open with",
`--smoke-test ...`) opens the window, exactly `denoiser-gui ...`.

`DENOISER_STARTUP_PROBE=1` makes the window report when it is first visible and quit at once; the build
script uses it to time start-up of the bundled and the unbundled app through the same code path.
"""
from __future__ import annotations

import os
import sys
import time

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


def install_startup_probe() -> None:
    """Wrap QApplication.exec so the first event-loop turn with a shown, exposed window prints and quits."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    original_exec = QApplication.exec

    def check() -> None:
        shown = [w for w in QApplication.topLevelWidgets()
                 if w.isVisible() and w.windowHandle() is not None and w.windowHandle().isExposed()]
        if not shown:
            QTimer.singleShot(5, check)
            return
        print(f"startup-probe: window-visible epoch={time.time():.6f} title={shown[0].windowTitle()!r}",
              flush=True)
        QApplication.quit()

    def exec_with_probe(*_args: object) -> int:  # called as app.exec() or QApplication.exec()
        QTimer.singleShot(0, check)
        return original_exec()

    QApplication.exec = exec_with_probe  # type: ignore[method-assign]


def main() -> int:
    prepare()
    if wants_cli(sys.argv[1:]):
        from denoiser.cli import main as cli_main

        return cli_main(sys.argv[1:])
    if os.environ.get("DENOISER_STARTUP_PROBE"):
        install_startup_probe()
    from denoiser.gui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
