"""The main window: wires menus, compare view, controls and workers together. No business logic here:
work runs in jobs (gui/jobs.py -> denoiser.core) on worker threads; this file only reacts to results."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow

from denoiser.core.io.formats import SUPPORTED_EXTENSIONS
from denoiser.gui import jobs
from denoiser.gui.actions import Actions
from denoiser.gui.compare_view import CompareView
from denoiser.gui.controls import ControlsPanel, scrolling
from denoiser.gui.dialog_launcher import DialogLauncher
from denoiser.gui.errors import describe, show_error
from denoiser.gui.preview import Previewer
from denoiser.gui.saver import Saver
from denoiser.gui.settings import AppSettings
from denoiser.gui.status import StatusLine, profile_note
from denoiser.gui.theme import apply_theme
from denoiser.gui.window_state import RunSettings, WindowState, describe_level
from denoiser.gui.workers import Job, JobRunner

STARTUP_DEFER_MS = 150  # let the window appear before torch starts loading on a worker
CLOSE_WAIT_MS = 20_000  # after the window has gone: how long to let cancelled jobs reach their next tile
IMAGE_FILTER = f"Images ({' '.join('*' + e for e in sorted(SUPPORTED_EXTENSIONS))});;All files (*)"


class MainWindow(QMainWindow):
    catalogue_loaded = Signal()
    photo_loaded = Signal(object)  # jobs.LoadedPhoto
    denoised = Signal(object)  # jobs.DenoiseResult
    preview_partial = Signal(object)  # jobs.PreviewResult of the centre, shown first
    preview_shown = Signal(object)  # jobs.PreviewResult of the whole visible region
    noise_estimated = Signal(object)  # the measured level | None
    saved = Signal(object)  # Path
    run_cancelled = Signal()
    failed = Signal(str)  # the text the user was shown

    def __init__(self, settings: QSettings | AppSettings | None = None, interactive: bool = True) -> None:
        super().__init__()
        self.settings = settings if isinstance(settings, AppSettings) else AppSettings(settings)
        self.interactive = interactive  # False (smoke test): errors are reported, not shown in a modal box
        self.theme = apply_theme(self.settings.theme)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)  # gone with the window
        self.setWindowTitle("Photo Denoiser")
        self.setAcceptDrops(True)
        self.compare = CompareView(self)
        self.setCentralWidget(self.compare)
        self.controls = ControlsPanel(self)
        self.state = WindowState(self.controls, self)
        dock = QDockWidget("Denoise", self)
        dock.setObjectName("controls-dock")
        dock.setWidget(scrolling(self.controls))  # the panel scrolls on short screens instead of growing the window
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.acts = Actions(self)
        self.acts.build_menus(self)
        self.addToolBar(self.acts.build_toolbar(self))
        self.status = StatusLine(self.statusBar())
        # lanes, so a slow noise estimate never delays opening the next photo or saving, and a folder job or a
        # fine-tune (their dialogs run on the last two) never queues the window's own runs behind it
        self.io, self.compute, self.analysis = JobRunner(self), JobRunner(self), JobRunner(self)
        self.batch_lane, self.training_lane = JobRunner(self), JobRunner(self)
        self.cache, self.analysis_cache = jobs.DenoiserCache(), jobs.DenoiserCache()  # one Denoiser per lane
        self.dialogs = DialogLauncher(self, self.state)
        self._load_job: Job | None = None
        self._run_job: Job | None = None
        self._run_settings: RunSettings | None = None
        self._denoise_when_ready = False
        self.previewer = Previewer(self.state, self.compare, self.compute, self.cache, self.running, self)
        self.previewer.partial.connect(self.preview_partial)
        self.previewer.shown.connect(self.preview_shown)
        self.previewer.failed.connect(lambda exc: self.report_error("Preview failed", exc))
        self.saver = Saver(self)
        self.saver.saved.connect(self.saved)
        self.acts.observe(self.state, self.controls)
        self._connect_controls()
        self._restore_settings()
        self._first_show = True

    # the state's photo and result, under the names the tests and benchmarks use
    photo = property(lambda self: self.state.photo, lambda self, v: setattr(self.state, "photo", v))
    result = property(lambda self: self.state.result, lambda self, v: setattr(self.state, "result", v))
    catalogue = property(lambda self: self.state.catalogue)

    def showEvent(self, event) -> None:
        """List the models (which imports torch, on a worker) only once the window is up."""
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            QTimer.singleShot(STARTUP_DEFER_MS, self.refresh_models)

    # --- setup --------------------------------------------------------------------------------
    def _connect_controls(self) -> None:
        c = self.controls
        c.denoise_clicked.connect(self.denoise)
        c.cancel_clicked.connect(self.cancel)
        for changed in (c.strength_changed, c.quality_changed, c.tone_changed):  # preview what the panel says
            changed.connect(self.previewer.schedule)
        c.model_changed.connect(self._model_changed)
        c.device_changed.connect(self._offer_int8)
        self.settings.follow(c, self.compare)

    def _restore_settings(self) -> None:
        s = self.settings
        if s.geometry() is not None:
            self.restoreGeometry(s.geometry())
        else:
            self.resize(1280, 800)
        if s.window_state() is not None:
            self.restoreState(s.window_state())
        self.controls.set_strength(s.strength_auto, s.strength_sigma, s.strength_scale)
        if s.quality is None:
            self.controls.use_default_quality()
        else:
            self.controls.set_quality(s.quality)
        self.compare.set_mode(s.view_mode if s.view_mode in self.acts.mode_actions else "side")
        self.acts.rebuild_recent(s, self.open_path)

    @Slot(str)
    def set_theme(self, theme: str) -> None:
        """View ▸ Theme: dark, light or the system's; remembered."""
        self.settings.theme = theme
        self.theme = apply_theme(theme)
        self.acts.check_theme(theme)

    @Slot(Qt.ColorScheme)
    def _system_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    def lanes(self) -> tuple[JobRunner, ...]:
        return self.io, self.compute, self.analysis, self.batch_lane, self.training_lane

    # --- errors -------------------------------------------------------------------------------
    def report_error(self, title: str, error: BaseException | str) -> None:
        """The one error handler: every failure (load, run, save, dialogs) ends here."""
        text = show_error(self, title, error) if self.interactive else (
            error if isinstance(error, str) else describe(error))
        self.status.message(f"{title}: {text}")
        self.failed.emit(text)

    # --- models -------------------------------------------------------------------------------
    @Slot()
    def refresh_models(self, select: str | None = None) -> None:
        job = Job(jobs.catalogue, name="catalogue")
        job.signals.result.connect(lambda cat: self._on_catalogue(cat, select))
        job.signals.error.connect(lambda exc: self.report_error("Cannot list the models", exc))
        self.io.start(job)

    def _on_catalogue(self, cat: jobs.Catalogue, select: str | None) -> None:
        self.cache.clear()  # a model file may have been replaced, renamed or deleted
        self.analysis_cache.clear()
        self.state.set_catalogue(cat)
        chosen = select or self.controls.model_name() or self.settings.model
        saved_device = self.settings.device
        self.controls.set_devices(cat.devices, saved_device)  # first: the model's change asks if Fast can run there
        self.controls.set_models(cat.models, chosen)
        self.catalogue_loaded.emit()
        if saved_device not in cat.devices:
            self.settings.device = "auto"
            self.report_error("Device not available", f"The device chosen last time ({saved_device}) is not "
                              f"available on this machine; using Auto ({', '.join(cat.devices)}).")
        if not cat.models:
            self.report_error("No model installed", "No denoising model is installed. Import one with "
                              "Model ▸ Manage models… or `denoiser models import FILE`.")
        elif self._denoise_when_ready:
            self._denoise_when_ready = False
            self.denoise()

    @Slot()
    def _offer_int8(self) -> None:
        """Quality Fast only where the model has an INT8 build to run on this device (gui.quality)."""
        self.controls.offer_int8(self.state.fast_unavailable())

    @Slot(str)
    def _model_changed(self, name: str) -> None:
        self.settings.model = name
        self.status.set_model(name)
        self._offer_int8()
        if self.photo is not None:  # Auto is calibrated per model: measure again
            self._start_estimate(self.photo)
        self.previewer.schedule()

    # --- opening ------------------------------------------------------------------------------
    @Slot()
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", self.settings.last_folder, IMAGE_FILTER)
        if path:
            self.open_path(Path(path))

    def open_paths(self, paths: list[Path]) -> None:
        """Several photos at once (a drop, or the desktop file's %F): the window shows one photo, so the
        first opens and the others go to the top of File ▸ Open Recent, one click away."""
        if not paths:
            return
        rest = [Path(p) for p in paths[1:] if Path(p).is_file()]
        for extra in reversed(rest):
            self.settings.add_recent(extra)
        if rest:
            self.acts.rebuild_recent(self.settings, self.open_path)
            self.status.message(f"{len(rest)} more photo{'s' if len(rest) > 1 else ''} in File ▸ Open Recent; "
                                "for many photos use File ▸ Batch")
        self.open_path(paths[0])

    def open_path(self, path: Path | str) -> None:
        """File ▸ Open, Open Recent, drops and the command line all come here."""
        path = Path(path)
        if path.is_dir():
            self.dialogs.batch(path)
            return
        if self._load_job is not None:
            self._load_job.cancel()
        job = Job(jobs.load, path, name="load")
        job.signals.result.connect(lambda lp, j=job: self._on_loaded(lp, j))
        job.signals.error.connect(lambda exc, p=path: self._on_load_failed(p, exc))
        job.signals.finished.connect(lambda j=job: self._job_done(j))
        self._load_job = job
        self.controls.set_busy(True, f"Opening {path.name}…", indeterminate=True)
        self.io.start(job)

    def _on_loaded(self, loaded: jobs.LoadedPhoto, job: Job) -> None:
        if job is not self._load_job:
            return  # a newer open superseded this one
        if self._run_job is not None:
            self._run_job.cancel()
        self.saver.waiting = None
        if self._denoise_when_ready and self.catalogue is not None:  # it was waiting for the old photo's estimate
            self._denoise_when_ready = False
            self._job_done(None)
        self.state.set_photo(loaded)
        p = loaded.photo
        self.compare.set_original(loaded.display)
        self.controls.set_message("")
        self.status.set_photo(p.width, p.height, p.bit_depth, p.pixels.shape[2], None)
        self._start_estimate(loaded)
        self.status.message(f"Opened {p.source.name if p.source else 'photo'} in {loaded.seconds:.1f} s"
                            + profile_note(self.controls.model_name(), p.exif))
        if p.source is not None:
            self.settings.add_recent(p.source)
            self.settings.last_folder = str(p.source.parent)
            self.acts.rebuild_recent(self.settings, self.open_path)
            self.setWindowTitle(f"{p.source.name} — Photo Denoiser")
        self.photo_loaded.emit(loaded)

    def _start_estimate(self, loaded: jobs.LoadedPhoto) -> None:
        """Auto's measurement on the analysis lane; a newer one (another model, another photo) supersedes it."""
        self.controls.set_estimated_sigma(None, pending=True)
        token = self.state.measuring()
        job = Job(jobs.estimate, self.analysis_cache, loaded.photo, self.controls.model_name(),
                  self.controls.device(), name="estimate")
        job.signals.result.connect(lambda level, lp=loaded, t=token: self._on_estimate(lp, t, level))
        job.signals.error.connect(lambda exc: self.report_error("Cannot estimate the noise level", exc))
        self.analysis.start(job)

    def _on_estimate(self, loaded: jobs.LoadedPhoto, token: int, level: object) -> None:
        if not self.state.measured(loaded, token, level):
            return  # for another photo, or superseded by a newer measurement
        self.controls.set_estimated_sigma(level)
        p = loaded.photo
        self.status.set_photo(p.width, p.height, p.bit_depth, p.pixels.shape[2], level)
        self.noise_estimated.emit(level)
        if self._denoise_when_ready and self.catalogue is not None:
            self._denoise_when_ready = False
            self.denoise()

    def _on_load_failed(self, path: Path, exc: BaseException) -> None:
        self.controls.set_message(f"Could not open {path.name}." if self.photo is None else "")
        if not path.exists() and str(path.resolve()) in self.settings.recent_files():
            self.settings.remove_recent(str(path.resolve()))
            self.acts.rebuild_recent(self.settings, self.open_path)
        self.report_error("Cannot open photo", exc)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.open_paths([Path(u.toLocalFile()) for u in urls])

    # --- denoising ----------------------------------------------------------------------------
    @Slot()
    def denoise(self) -> None:
        if self.photo is None or self.running():
            return
        if self.catalogue is None:
            self._denoise_when_ready = True
            self.status.message("Still loading the models; the run starts when they are ready")
            return
        if not self.controls.model_name():
            self.report_error("No model", "No denoising model is installed or selected.")
            return
        self.previewer.stop()
        settings = self.state.shown_settings()
        if settings is None and not self.photo.estimated:  # Auto: its measurement runs on the analysis lane
            self._denoise_when_ready = True
            self.controls.set_busy(True, "Waiting for Auto to measure the noise…", indeterminate=True)
            return
        if settings is None:
            self.saver.waiting = None
            self.report_error("Cannot denoise", "The photo is too small to measure its noise level: "
                              "turn Auto off and choose a noise level.")
            self._job_done(None)
            return
        controls = {} if settings.controls.plain else {"controls": settings.controls}
        job = Job(jobs.denoise, self.cache, self.photo.photo, settings.model, self.controls.device(),
                  settings.level, settings.passes, name="denoise", precision=settings.precision, **controls)
        source = self.photo
        job.signals.progress.connect(self.controls.set_progress)
        job.signals.result.connect(lambda r, src=source, st=settings: self._on_denoised(r, src, st))
        job.signals.error.connect(self._on_denoise_failed)
        job.signals.cancelled.connect(self._on_cancelled)
        job.signals.finished.connect(lambda j=job: self._job_done(j))
        self._run_job = job
        self.controls.set_busy(True, "Starting…")
        self.compute.start(job)

    def _on_denoised(self, result: jobs.DenoiseResult, source: jobs.LoadedPhoto, settings: RunSettings) -> None:
        if source is not self.photo:
            return
        self.state.set_result(result, settings)
        self.compare.set_result(result.display, result.difference, result.gain)
        self.compare.set_detail_map(result.detail_map, result.detail_score)
        self.status.set_last_run(result.seconds, result.sigma, result.precision)
        self.status.set_device(result.device_name)
        self.controls.set_device_in_use(result.device_name)
        for notice in result.notices:
            self.status.message(notice)
        int8 = ", INT8" if result.precision == "int8" else ""
        self.controls.set_message(f"Done in {result.seconds:.1f} s: {describe_level(settings.level)}{int8}")
        self.denoised.emit(result)

    def _on_denoise_failed(self, exc: BaseException) -> None:
        self.saver.waiting = None
        self.report_error("Denoising failed", exc)

    def running(self) -> bool:
        """A full denoising run is in progress."""
        return self._run_job is not None and not self._run_job.done

    @Slot()
    def cancel(self) -> None:
        """Esc: says "Cancelling…" at once; the run stops at its next tile (interactive tiles are small)."""
        self.previewer.stop()
        self.saver.waiting = None
        if self._denoise_when_ready:
            self._denoise_when_ready = False
            self._on_cancelled()
            self._job_done(None)
        active = [j for j in (self._run_job, self._load_job) if j is not None and not j.done]
        for job in active:
            job.cancel()
        if active:
            self.controls.set_cancelling()
            self.status.message("Cancelling…")

    def _on_cancelled(self) -> None:
        self.status.message("Cancelled")
        self.controls.set_message("Cancelled")
        self.run_cancelled.emit()

    def _job_done(self, job: Job | None) -> None:
        if job is self._load_job:
            self._load_job = None
        busy = any(j is not None and not j.done for j in (self._load_job, self._run_job))
        if not busy and not self._denoise_when_ready:
            self.controls.set_busy(False)
            self.acts.update_enabled(self.state, self.controls)
            if job is not None and job is self._run_job and self.previewer.pending:
                self.previewer.schedule()  # the settings changed during the run: show them now

    def save_to(self, path: Path, fmt: str, quality: int = 92, overwrite: bool = False) -> None:
        """Save what the panel shows (gui/saver.py): File ▸ Save As, the smoke test and the tests come here."""
        self.saver.save_to(path, fmt, quality, overwrite)

    # --- view and closing ---------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """The window goes at once; every lane and open dialog is cancelled and finishes behind it
        (wait_for_workers, called once the event loop has ended, bounds that)."""
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.hide()  # at once, before anything waits
        self.previewer.stop()
        self._denoise_when_ready, self.saver.waiting = False, None
        self.dialogs.shutdown()
        for lane in self.lanes():
            lane.cancel_all()
        super().closeEvent(event)

    def wait_for_workers(self, msecs: int = CLOSE_WAIT_MS) -> bool:
        """Wait (at most msecs in all) for every lane to finish; no worker thread is destroyed while it runs."""
        deadline = time.monotonic() + msecs / 1000
        return all(lane.wait(max(0, int((deadline - time.monotonic()) * 1000))) for lane in self.lanes())
