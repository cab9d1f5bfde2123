"""Take the README's screenshots of the window (its default dark theme) from the real window under a display
(e.g. Xvfb): docs/window-running.png (a run mid-way: progress, time left, Cancel), docs/manage-models.png
(Model > Manage models), docs/batch-results.png (a finished batch of a few Kodak photos) and
docs/finetune-running.png (the fine-tune dialog mid-run: phase, loss curve, before/after).

    Xvfb :99 -screen 0 1600x1000x24 & openbox &
    DISPLAY=:99 python benchmarks/gui_run_screenshots.py [--megapixels 4] [--steps 60]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gui_common import KODAK, REPO, make_photo, make_window, model_env, pump, wait_for


def grab(window, out: Path) -> None:
    """The real screen pixels under the window (frame included)."""
    shot = window.screen().grabWindow(0).copy(window.frameGeometry())
    out.parent.mkdir(parents=True, exist_ok=True)
    shot.save(str(out))
    print(f"saved {out} ({shot.width()}x{shot.height()})")


def wait_until(app, check, timeout_s: float = 600) -> None:
    import time

    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        pump(app, 0.05)


def shoot_manager(app, window, out: Path) -> None:
    from denoiser.gui.dialogs.model_manager import ModelManagerDialog

    dlg = ModelManagerDialog(window)
    dlg.move(40, 40)
    dlg.show()
    pump(app, 0.5)
    grab(dlg, out)
    dlg.close()


def shoot_batch(app, window, out: Path) -> None:
    """A finished batch of six small Kodak crops (one unreadable file among them, to show a reason)."""
    import cv2

    folder = Path(tempfile.mkdtemp(prefix="batch-photos-")) / "holiday"
    folder.mkdir()
    for name in ("kodim01.png", "kodim03.png", "kodim05.png", "kodim14.png", "kodim19.png", "kodim23.png"):
        img = cv2.imread(str(KODAK / name))
        cv2.imwrite(str(folder / name.replace(".png", ".jpg")), img[::2, ::2], [cv2.IMWRITE_JPEG_QUALITY, 90])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a photo")
    window.dialogs.batch(folder)
    dlg = window.dialogs.open_dialogs[-1]
    dlg.move(20, 20)
    dlg.start()
    wait_for(app, dlg.batch_finished)
    pump(app, 0.5)
    grab(dlg, out)
    dlg.close()
    shutil.rmtree(folder.parent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=4.0, help="size of the photo denoised mid-shot")
    ap.add_argument("--steps", type=int, default=60, help="fine-tune steps (the shot is taken after a few)")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--docs", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("needs a display: run under Xvfb (see the docstring)")
    model_env(args.model)
    photo = make_photo(args.megapixels)
    app, window = make_window(threads=2)
    window.resize(1280, 800)
    window.move(0, 0)
    window.show()
    wait_for(app, window.catalogue_loaded)
    window.open_path(photo)
    wait_for(app, window.photo_loaded)
    window.controls.set_strength(False, 15.0)
    fractions: list[float] = []
    window.denoise()
    window._run_job.signals.progress.connect(lambda f, _m: fractions.append(f))
    wait_until(app, lambda: fractions and fractions[-1] >= 0.3)
    pump(app, 0.3)
    grab(window, args.docs / "window-running.png")
    window.acts.cancel.trigger()
    wait_for(app, window.run_cancelled)

    shoot_manager(app, window, args.docs / "manage-models.png")
    shoot_batch(app, window, args.docs / "batch-results.png")

    folder = Path(tempfile.mkdtemp(prefix="ft-photos-"))
    for name in ("kodim03.png", "kodim05.png", "kodim14.png", "kodim23.png"):
        shutil.copy(KODAK / name, folder / name)
    window.dialogs.finetune()
    dlg = window.dialogs.open_dialogs[-1]
    dlg.move(40, 40)
    dlg.set_folder(str(folder))
    dlg.name.setText("my-kodak-photos")
    wait_until(app, lambda: dlg.suggestion.text().startswith("Measured"))
    dlg.mode.setCurrentIndex(dlg.mode.findData("clean"))
    dlg.sigma.setValue(15.0)
    dlg.steps.setValue(args.steps)
    dlg.start()
    wait_until(app, lambda: len(dlg.steps_x) >= 12 and not dlg.after.pixmap().isNull())
    pump(app, 0.5)
    grab(dlg, args.docs / "finetune-running.png")
    dlg.cancel()
    wait_until(app, lambda: not dlg.running())
    from denoiser.core.training.finetune import discard_run

    discard_run("my-kodak-photos")
    window.close()
    window.wait_for_workers()
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
