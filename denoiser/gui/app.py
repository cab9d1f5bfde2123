"""`denoiser-gui [IMAGE]`: the QApplication and the main window. torch is not imported here: the window
shows first, and the models (and with them torch) load on a worker thread."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from denoiser.exit_codes import ExitCode

SMOKE_TIMEOUT_S = 300

# numpy's OpenBLAS starts one busy-waiting thread per core. On a loaded 2-core machine that made the noise
# estimate 6x slower (22.7 s -> 3.9 s for a 24 MP photo) and starved the GUI thread (worst 10 ms-tick gap
# 278 -> 38 ms). The heavy work is in torch, which has its own thread pool. Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="denoiser-gui", description="Photo Denoiser desktop window.")
    p.add_argument("image", nargs="*", type=Path,
                   help="photo (or folder, for a batch) to open; more photos go to File ▸ Open Recent")
    p.add_argument("--smoke-test", nargs=2, type=Path, metavar=("IMAGE", "OUTPUT"),
                   help="open IMAGE in the real window, denoise it, save OUTPUT, quit (exit 0 on success)")
    p.add_argument("--smoke-timeout", type=float, default=SMOKE_TIMEOUT_S, help=argparse.SUPPRESS)
    p.add_argument("--exit-after-show", action="store_true", help=argparse.SUPPRESS)  # startup benchmark
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    return p.parse_args(argv)


def create_application(argv0: str = "denoiser-gui"):
    from PySide6.QtWidgets import QApplication

    from denoiser import APP_ID, __version__
    from denoiser.gui.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication([argv0])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    _set_icon(app)
    return app


def file_open_filter(window):
    """An application event filter that opens QFileOpenEvent files (macOS sends them, not argv)."""
    from PySide6.QtCore import QEvent, QObject

    class _Filter(QObject):
        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.FileOpen and event.file():
                window.open_paths([Path(event.file())])
                return True
            return False

    return _Filter(window)


def _set_icon(app) -> None:
    from PySide6.QtGui import QIcon

    from denoiser import APP_ID
    from denoiser.core.resources import resources_dir

    icon = QIcon()
    for path in sorted((resources_dir() / "icons" / "hicolor").glob(f"*/apps/{APP_ID}.png")):
        icon.addFile(str(path))
    if not icon.isNull():
        app.setWindowIcon(icon)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from denoiser.display import display_problem

    if problem := display_problem():  # before Qt aborts with a misleading "xcb-cursor0 is needed"
        print(f"denoiser-gui: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    app = create_application()
    from denoiser.gui.main_window import MainWindow

    if args.smoke_test:
        from denoiser.gui.smoke import run_smoke_test

        return run_smoke_test(app, MainWindow, *args.smoke_test, timeout_s=args.smoke_timeout)
    window = MainWindow()
    opener = file_open_filter(window)  # macOS: Finder's "Open With" and drops on the Dock icon
    app.installEventFilter(opener)
    window.show()
    if args.exit_after_show:
        return _exit_after_show(app, window)
    if args.image:
        window.open_paths(args.image)
    code = app.exec()
    window.wait_for_workers()  # the window has gone; cancelled jobs stop at their next tile or step
    return code


def _exit_after_show(app, window) -> int:
    """Startup benchmark: report once the window is exposed and painted, then quit."""
    from PySide6.QtCore import QTimer

    def check() -> None:
        handle = window.windowHandle()
        if handle is None or not handle.isExposed():
            QTimer.singleShot(5, check)
            return
        window.repaint()  # the first frame is drawn before we say "shown"
        print(f"SHOWN torch_loaded={'torch' in sys.modules}", flush=True)
        window.close()
        app.quit()

    QTimer.singleShot(0, check)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
