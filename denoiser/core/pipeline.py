"""One photo from plan item to saved file: `process_photo`, called by `denoise`, the batch runner, the window's
batch jobs and a cluster worker alike.

Inputs are paths and plain options (`PhotoTask`, `PhotoOptions`: picklable, so a Dask worker gets them as
they are); the engines come from a per-process `EngineCache`, each model opened once. The steps: claim the
output (core.claims: two runs into one folder never redo each other's photos), decode, measure Auto's noise
map once (`prepare`: the map does not depend on the model, so a camera profile chosen afterwards reuses it),
choose the model or camera profile from the EXIF, denoise, apply the luma/chroma/detail controls, score the
removed detail, note how the file was made in its XMP (the NoiseLevel's record) and save atomically.

The seam for other kinds of input and output is `route(task, options)`: the one place that picks the path a
photo takes, from the planned output's format (the output's suffix; the plan has resolved "keep" by the
input's kind). Every route has the signature of `develop_raster` and returns a PhotoResult, and runs inside
process_photo's claim and failure handling; the RAW→DNG path (core.inference.raw_path.raw_to_dng, reading a
camera raw and writing a DNG) registers itself as ROUTES[".dng"], and `denoise`, `batch`, the window and the
cluster then take it without further change.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from denoiser.core.claims import Held, take
from denoiser.core.inference import controls as tone
from denoiser.core.inference.controls import Controls
from denoiser.core.inference.detail_map import detail_report
from denoiser.core.inference.engine import Denoiser, open_denoiser
from denoiser.core.io.photo import (
    DEFAULT_MAX_MEGAPIXELS,
    Photo,
    PhotoError,
    check_target,
    load_photo,
    remove_stale_parts,
    save_photo,
)
from denoiser.core.model.profiles import AUTO_MODEL, ModelChooser
from denoiser.core.noise.level import NoiseLevel, requested_level
from denoiser.core.progress import Cancelled, NullProgress, Progress

DONE, SKIPPED, FAILED = "done", "skipped", "failed"  # the batch plan's statuses (core.batch.plan)


@dataclass(frozen=True)
class PhotoTask:
    """Which photo and where it goes; `label` names it in reports (the path relative to the job's folder)."""

    source: Path
    output: Path
    label: str = ""


@dataclass(frozen=True)
class PhotoOptions:
    """How every photo of a run is made; each default lives here (BatchOptions and the CLI fill it in)."""

    fmt: str = "keep"
    quality: int = 95
    strength: float | None = None  # a fixed noise level 0..255; None: Auto, measured per photo
    strength_scale: float = 1.0  # with Auto: the scale on its map (noise.level.SCALE_RANGE)
    overwrite: bool = False
    model: str | None = None  # name or .safetensors path; None or "auto": camera profile, else the default
    device: str = "auto"
    tile: int | None = None
    passes: int = 1
    controls: Controls = Controls()
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    max_memory: int | None = None
    run_id: str = ""  # names the run in the claims it takes (a cluster's attempts share one)
    claim: bool = True  # take the output's claim first (core.claims)
    dng: str = "linear"  # a camera raw's DNG: "linear" (demosaiced) | "cfa" (its mosaic, for the user's demosaic)
    precision: str = "fp32"  # the pinned/default model's arithmetic: "fp32" | "int8" (its INT8 build; CPU only)

    def level(self) -> NoiseLevel | None:
        """The fixed level, or None for Auto; ValueError for a level or scale out of range."""
        return requested_level(self.strength, self.strength_scale)


@dataclass
class PhotoResult:
    """What happened to one photo: what the report row and the terminal line say."""

    status: str
    reason: str = ""
    output: Path | None = None
    seconds: float = 0.0
    level: NoiseLevel | None = None  # the level used, without its map (cheap to send back from a worker)
    model: str = ""
    model_reason: str = ""  # why this model ("camera profile X (Canon EOS R5, ISO 6400)")
    device: str = ""
    detail_score: float | None = None
    notices: tuple[str, ...] = ()
    worker: str = ""  # the cluster worker that made it ("" locally)

    @property
    def sigma(self) -> float | None:
        return None if self.level is None else float(self.level)


@dataclass
class Prepared:
    """A decoded photo and Auto's level for it (or why not): the part a prefetch thread can do ahead."""

    photo: Photo | None
    level: NoiseLevel | None
    seconds: float
    error: Exception | None = None


EngineKey = tuple[str | None, str, int | None, str]  # (model, device, tile, precision)


def _model_key(model: str | None) -> str | None:
    return None if model in (None, "", AUTO_MODEL) else model


class EngineCache:
    """This process's engines, each model opened once per (model, device, tile, precision); thread-safe. A
    cluster worker keeps one for its lifetime (core.batch.cluster), keyed as well by the model file's hash there.
    A camera profile chosen per photo always runs in fp32 (only the shipped model has an INT8 build)."""

    def __init__(self, loader: Callable[[str | None, str, int | None, str], Denoiser] | None = None) -> None:
        self._load = loader or (lambda name, device, tile, precision:
                                open_denoiser(name, device=device, tile=tile, precision=precision))
        self._engines: dict[EngineKey, Denoiser] = {}
        self._lock = threading.Lock()

    def get(self, model: str | None, device: str = "auto", tile: int | None = None,
            precision: str = "fp32") -> Denoiser:
        """The engine for `model` (None or "auto": the shipped default)."""
        key = (_model_key(model), device, tile, precision)
        with self._lock:
            if key not in self._engines:
                self._engines[key] = self._load(key[0], device, tile, precision)
            return self._engines[key]

    def put(self, engine: Denoiser, model: str | None, device: str = "auto", tile: int | None = None,
            precision: str = "fp32") -> None:
        """Seed the cache with an engine already open (the CLI opens the default before any photo)."""
        with self._lock:
            self._engines[(_model_key(model), device, tile, precision)] = engine

    def engine(self, options: PhotoOptions) -> Denoiser:
        """The run's own engine: its pinned model (or the default) at its precision."""
        return self.get(options.model, options.device, options.tile, options.precision)

    def chooser(self, options: PhotoOptions) -> ModelChooser:
        """The model for each photo: the pinned one, or (auto) the camera profile its EXIF matches."""
        def load(name: str | None) -> Denoiser:
            own = _model_key(name) == _model_key(options.model)
            return self.get(name, options.device, options.tile, options.precision if own else "fp32")
        return ModelChooser(options.model, load)


class Route(Protocol):
    def __call__(self, task: PhotoTask, options: PhotoOptions, engines: EngineCache, progress: Progress,
                 prepared: Prepared | None) -> PhotoResult: ...


def prepare(task: PhotoTask, options: PhotoOptions, engines: EngineCache,
            measuring: Callable[[], AbstractContextManager[object]] = nullcontext) -> Prepared:
    """Decode the photo and, with Auto, measure its noise map once (any model then reuses it); `measuring`
    wraps the measurement (the terminal announces it)."""
    start = time.perf_counter()
    if route(task, options) is not develop_raster:  # a route that reads its input itself (RAW→DNG)
        return Prepared(None, None, 0.0)
    try:
        photo = load_photo(task.source, max_megapixels=options.max_megapixels, max_memory=options.max_memory)
        level = None
        if options.strength is None:
            with measuring():
                level = _measure(photo, task.source, engines.engine(options),
                                 options.strength_scale)
        return Prepared(photo, level, time.perf_counter() - start)
    except Exception as exc:  # reported for this photo; never fatal to a run
        return Prepared(None, None, time.perf_counter() - start, exc)


def _measure(photo: Photo, source: Path, engine: Denoiser, scale: float) -> NoiseLevel:
    try:
        return engine.auto_strength(photo.pixels, scale=scale)
    except ValueError as exc:
        hint = "" if "--strength" in str(exc) else "; set the strength yourself (--strength)"
        raise PhotoError(f"{source}: Auto cannot measure the noise of a {photo.width} x {photo.height} photo "
                         f"({exc}){hint}") from None


def develop_raster(task: PhotoTask, options: PhotoOptions, engines: EngineCache, progress: Progress,
                   prepared: Prepared | None) -> PhotoResult:
    """The photo route: pixels in, pixels out (JPEG, PNG, TIFF, WebP...; a RAW read developed, saved as TIFF)."""
    if prepared is None:
        progress.report(0.0, "reading" if options.strength is not None else "reading, measuring the noise")
        prepared = prepare(task, options, engines)
    if prepared.error is not None:
        raise prepared.error
    photo = prepared.photo
    assert photo is not None
    check_target(photo, task.output, options.overwrite)  # save_photo's refusal, before the long work
    engine, choice = engines.chooser(options).for_exif(photo.exif)
    level = options.level() or prepared.level
    out, used = tone.denoise_photo(engine, photo, level, options.controls, progress, options.passes)
    score = detail_report(photo.pixels, out.pixels).score
    model = engine.model_name + (" (developed RGB)" if photo.format == "RAW" else "")  # a raw's path is named
    out = tone.with_note(out, model, used, options.passes, options.controls, engine.precision)
    make_folder(task.output.parent)
    remove_stale_parts([task.output])  # a killed run's temp file for this output (ours: we hold its claim)
    saved = save_photo(out, task.output, fmt=options.fmt, quality=options.quality, overwrite=options.overwrite)
    model += ", INT8" if engine.precision == "int8" else ""  # the report's model column says what ran
    return PhotoResult(DONE, output=saved, level=used.without_map(), model=model,
                       model_reason=choice.reason if choice.profile else "", device=engine.device_name,
                       detail_score=score, notices=tuple(engine.notices))


ROUTES: dict[str, Route] = {}  # planned output's suffix -> route; ".dng": core.inference.raw_path's RAW→DNG


def route(task: PhotoTask, options: PhotoOptions) -> Route:
    """The path this photo takes, by the planned output's format (its suffix: the plan has already turned
    "keep" into a concrete format); the raster route by default."""
    return ROUTES.get(task.output.suffix.lower(), develop_raster)


def process_photo(task: PhotoTask, options: PhotoOptions, engines: EngineCache, progress: Progress | None = None,
                  prepared: Prepared | None = None) -> PhotoResult:
    """Make one photo's output. Never raises for the photo's own failures (the result says FAILED and why,
    in one line without the file's own path) nor when another run holds it (SKIPPED); Cancelled and
    KeyboardInterrupt propagate, leaving no partial file (saves are atomic, the claim is released)."""
    progress = progress or NullProgress()
    start = time.perf_counter()
    new_folders = _missing_folders(task.output.parent)
    result = PhotoResult(SKIPPED, "cancelled")
    try:
        make_folder(task.output.parent)
        with _claimed(task, options):
            if task.output.exists() and not options.overwrite:  # finished by another run since the plan
                result = PhotoResult(SKIPPED, "output exists", output=task.output)
            else:
                result = route(task, options)(task, options, engines, progress, prepared)
    except Held as held:
        result = PhotoResult(SKIPPED, str(held))
    except Cancelled:
        raise
    except Exception as exc:  # one bad photo never stops a run
        result = PhotoResult(FAILED, failure_reason(exc, task.source))
    finally:  # Cancelled and KeyboardInterrupt go on up; a folder made for a photo that was not made goes
        if result.status != DONE:
            _remove_empty(new_folders)
    result.seconds = (prepared.seconds if prepared else 0.0) + time.perf_counter() - start
    return result


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; one that holds anything (another run's file) stays
        try:
            folder.rmdir()
        except OSError:
            return


class _NoClaim:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _claimed(task: PhotoTask, options: PhotoOptions):
    if not options.claim:
        return _NoClaim()
    try:
        return take(task.output, options.run_id)
    except FileNotFoundError:  # another run removed the (then empty) folder just now
        make_folder(task.output.parent)
        return take(task.output, options.run_id)


def clean_stale_parts(outputs: list[Path]) -> None:
    """Delete the temp files killed runs left for these outputs, each under its claim: a run working on one
    of them now (another batch into the same folder) keeps its temp file. Each folder is listed once, and one
    with nothing to clean is left as it is (not even a claim file comes and goes)."""
    by_folder: dict[Path, list[Path]] = {}
    for output in outputs:
        by_folder.setdefault(output.parent, []).append(output)
    for folder, outs in by_folder.items():
        try:
            parts = {n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".part")}
        except OSError:
            continue
        for output in outs:
            if not any(n.startswith(f".{output.name}.") for n in parts):
                continue
            try:
                with take(output):
                    remove_stale_parts([output])
            except (Held, OSError):
                continue


def make_folder(folder: Path) -> None:
    """The output's folder, or a PhotoError that says what is in the way (not raw OSError text)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PhotoError(f"cannot create the folder {folder}: a file of that name is in the way; "
                         "move it or choose another output folder") from None
    except OSError as exc:
        raise PhotoError(f"cannot create the folder {folder} ({exc.strerror or exc}); "
                         "check its permissions or choose another output folder") from None


def failure_reason(exc: BaseException, source: Path) -> str:
    """One line; the file's own path is dropped (the report's first column already names it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.removeprefix(f"{source}: ")
    if isinstance(exc, PhotoError):
        return text or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


from denoiser.core.raw_pipeline import dng_route  # noqa: E402 (it imports this module only when it runs)

ROUTES[".dng"] = dng_route

__all__ = ["DONE", "FAILED", "SKIPPED", "EngineCache", "PhotoOptions", "PhotoResult", "PhotoTask", "Prepared",
           "ROUTES", "clean_stale_parts", "develop_raster", "failure_reason", "make_folder", "prepare", "process_photo",
           "route"]
