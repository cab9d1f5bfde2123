"""`denoiser-gui --smoke-test IMAGE OUTPUT`: drive the REAL window end to end, for checking a bundle.

Same paths as a user: open_path (File ▸ Open), denoise (the Denoise button), save_to (Save As). Works
offscreen; errors are printed instead of shown in a modal box; gives up with an error after a timeout.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from denoiser.core.io.formats import SUFFIX_SAVE_FORMAT as FORMATS


def run_smoke_test(app, window_class, image: Path, output: Path, timeout_s: float = 300) -> int:
    from PySide6.QtCore import QSettings, QTemporaryDir, QTimer

    settings_dir = QTemporaryDir()  # leave the user's preferences alone
    window = window_class(QSettings(f"{settings_dir.path()}/smoke.ini", QSettings.Format.IniFormat),
                          interactive=False)
    outcome: dict[str, object] = {"code": None}
    started = time.monotonic()

    def finish(code: int, text: str) -> None:
        if outcome["code"] is not None:
            return
        outcome["code"] = code
        print(f"smoke test {'ok' if code == 0 else 'FAILED'}: {text} ({time.monotonic() - started:.1f} s)",
              file=sys.stdout if code == 0 else sys.stderr, flush=True)
        window.cancel()
        app.exit(code)

    window.failed.connect(lambda text: finish(1, text))
    window.run_cancelled.connect(lambda: finish(1, "the run was cancelled"))
    window.catalogue_loaded.connect(lambda: window.open_path(Path(image)))
    window.photo_loaded.connect(lambda _lp: window.denoise())
    window.denoised.connect(lambda r: window.save_to(Path(output), FORMATS.get(Path(output).suffix.lower(), "keep"),
                                                     overwrite=True))
    window.saved.connect(lambda path: finish(0, f"saved {path}"))
    QTimer.singleShot(int(timeout_s * 1000), lambda: finish(1, f"timed out after {timeout_s:.0f} s"))
    window.show()
    code = app.exec()
    window.close()
    return int(outcome["code"] if outcome["code"] is not None else (code or 1))
