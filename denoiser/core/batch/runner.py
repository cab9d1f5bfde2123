"""Folder jobs: clean every photo of a folder without ever losing one.

One bad file never stops the job (its error is recorded and the next file starts), a re-run skips
what is already done, cancel stops within one tile and leaves no partial file (saves are atomic),
and a report says what happened to each file, also when the job was stopped. Decoding the next
photo (and estimating its noise level, when the strength is auto) runs on a one-slot prefetch
thread while the current one is denoised.
"""
from __future__ import annotations

import csv
import io
import json
import time
from contextlib import closing
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from denoiser.core.batch.plan import (DONE, FAILED, LEVEL_FIELDS, QUEUED, RUNNING, SKIPPED, BatchError, BatchItem,
                                     BatchOptions, BatchPlan, parse_shard, plan_batch)
from denoiser.core.inference import controls as tone
from denoiser.core.files import atomic_write_bytes
from denoiser.core.inference.detail_map import detail_report
from denoiser.core.inference.engine import Denoiser
from denoiser.core.inference.engine import open_denoiser
from denoiser.core.io.photo import Photo, PhotoError, load_photo, remove_stale_parts, save_photo
from denoiser.core.model.profiles import AUTO_MODEL, ModelChooser
from denoiser.core.noise.level import NoiseLevel
from denoiser.core.progress import Cancelled, NullProgress, Progress

__all__ = ["BatchError", "BatchItem", "BatchOptions", "BatchPlan", "BatchResult", "plan_batch", "run_batch",
           "parse_shard", "write_report", "DONE", "FAILED", "QUEUED", "RUNNING", "SKIPPED"]

REPORT_FIELDS = ("file", "status", "reason", "seconds", "strength", *LEVEL_FIELDS, "model", "removed_detail_pct",
                 "output")

# on_file(index in the plan, number of files in the plan, item): called on each status change.
FileCallback = Callable[[int, int, BatchItem], None]


@dataclass
class BatchResult:
    items: list[BatchItem] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    report: Path | None = None
    report_error: str = ""  # the report could not be written (the photos are fine)

    def having(self, status: str) -> list[BatchItem]:
        return [i for i in self.items if i.status == status]

    @property
    def done(self) -> list[BatchItem]:
        return self.having(DONE)

    @property
    def skipped(self) -> list[BatchItem]:
        return self.having(SKIPPED)

    @property
    def failed(self) -> list[BatchItem]:
        return self.having(FAILED)

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(self.having(s)) for s in (DONE, SKIPPED, FAILED)}

    @property
    def ok(self) -> bool:
        """True only if the job ran to the end, no file failed and the report (if asked) was written."""
        return not self.cancelled and not self.failed and not self.report_error


class _FileProgress:
    """Maps one file's tile progress onto the job's and forwards cancel checks to the job's progress."""

    def __init__(self, parent: Progress, k: int, n: int, label: str,
                 on_fraction: Callable[[float], None] | None) -> None:
        self.parent, self.k, self.n, self.label, self.on_fraction = parent, k, n, label, on_fraction

    def report(self, fraction: float, message: str = "") -> None:
        self.parent.report((self.k + fraction) / self.n, self.label)
        if self.on_fraction:
            self.on_fraction(fraction)

    def check_cancelled(self) -> None:
        self.parent.check_cancelled()


@dataclass
class _Loaded:
    """A decoded photo (or why it could not be), with its noise estimate when the strength is auto."""

    photo: Photo | None
    sigma: NoiseLevel | None
    seconds: float
    error: Exception | None = None


def _load(item: BatchItem, auto: Callable[[np.ndarray], NoiseLevel] | None, max_memory: int | None = None) -> _Loaded:
    """Decode, and find the Auto strength here too (`auto`, e.g. Denoiser.auto_strength): both then
    overlap with the previous denoise."""
    start = time.perf_counter()
    try:
        photo = load_photo(item.source, max_memory=max_memory)
        try:
            sigma = auto(photo.pixels) if auto is not None else None
        except ValueError as exc:
            hint = "" if "--strength" in str(exc) else "; set the strength yourself (--strength)"
            raise PhotoError(f"Auto cannot measure the noise of a {photo.width} x {photo.height} photo "
                             f"({exc}){hint}") from None
        return _Loaded(photo, sigma, time.perf_counter() - start)
    except Exception as exc:  # reported per file; never fatal
        return _Loaded(None, None, time.perf_counter() - start, exc)


def _decoded(items: list[BatchItem], prefetch: bool, auto: Callable[[np.ndarray], NoiseLevel] | None,
             max_memory: int | None = None) -> Iterator[tuple[BatchItem, _Loaded]]:
    """Yield each item with its decoded photo; with prefetch, decode one ahead on a thread."""
    if not prefetch:
        for item in items:
            yield item, _load(item, auto, max_memory)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-decode")
    try:
        nxt: Future | None = pool.submit(_load, items[0], auto, max_memory) if items else None
        for i, item in enumerate(items):
            assert nxt is not None
            loaded = nxt.result()
            nxt = pool.submit(_load, items[i + 1], auto, max_memory) if i + 1 < len(items) else None
            yield item, loaded
            del loaded  # drop our reference before the next decode lands
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _failure_reason(exc: BaseException, source: Path) -> str:
    """One line; the file's own path is dropped (the report's first column already names it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.removeprefix(f"{source}: ")
    if isinstance(exc, (PhotoError, BatchError)):
        return text or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _process(item: BatchItem, loaded: _Loaded, denoiser: Denoiser, opts: BatchOptions, progress: Progress,
             chooser: ModelChooser | None = None) -> None:
    if loaded.error is not None:
        raise loaded.error
    assert loaded.photo is not None
    sigma = opts.level() or loaded.sigma
    if chooser is not None:  # --model auto: a camera profile matching the photo's EXIF, else the default
        chosen, _ = chooser.for_exif(loaded.photo.exif)
        if chosen is not denoiser and opts.strength is None:
            sigma = chosen.auto_strength(loaded.photo.pixels, scale=opts.strength_scale)  # the profile's Auto
        denoiser = chosen
    out, used = tone.denoise_photo(denoiser, loaded.photo, sigma, opts.controls, progress, opts.passes)
    item.sigma, item.level = float(used), used.without_map()
    item.model = denoiser.model_name
    item.detail_score = detail_report(loaded.photo.pixels, out.pixels).score
    out = tone.with_note(out, item.model, used, opts.passes, opts.controls)
    assert item.output is not None
    _make_folder(item.output.parent)
    save_photo(out, item.output, fmt=opts.fmt, quality=opts.quality, overwrite=opts.overwrite)


def _make_folder(folder: Path) -> None:
    """The output's sub-folder, or a PhotoError that says what is in the way (not raw OSError text)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PhotoError(f"cannot create the folder {folder}: a file of that name is in the way; "
                         "move it or choose another output folder") from None
    except OSError as exc:
        raise PhotoError(f"cannot create the folder {folder} ({exc.strerror or exc}); "
                         "check its permissions or choose another output folder") from None


def make_denoiser(opts: BatchOptions, model: str | None = None) -> Denoiser:
    """The engine for `model` (default: the job's; "auto" loads the shipped default, profiles come per photo)."""
    model = opts.model if model is None else model
    return open_denoiser(None if model == AUTO_MODEL else model, device=opts.device, tile=opts.tile)


def run_batch(opts: BatchOptions, denoiser: Denoiser | None = None, progress: Progress | None = None,
              on_file: FileCallback | None = None, on_file_progress: Callable[[float], None] | None = None,
              plan: BatchPlan | None = None) -> BatchResult:
    """Run a folder job. Raises BatchError for a job that cannot start; per-file errors are only recorded.

    `progress` gets the overall fraction (and may cancel); `on_file` each status change of a file;
    `on_file_progress` the fraction of the file being denoised. The report (if asked) is written at the
    end, also after a cancel.
    """
    progress = progress or NullProgress()
    plan = plan or plan_batch(opts)
    result = BatchResult(items=plan.items)
    started = time.perf_counter()
    index = {id(item): n for n, item in enumerate(plan.items)}
    total = len(plan.items)

    def notify(item: BatchItem) -> None:
        if on_file:
            on_file(index[id(item)], total, item)

    try:
        for item in plan.items:
            if item.status != QUEUED:
                notify(item)
        todo = plan.todo
        # temp files a killed run left for this job's outputs (also beside an output finished since); no others
        remove_stale_parts([item.output for item in plan.items
                            if item.output is not None and (item.status == QUEUED or item.output_written)])
        if todo:
            denoiser = denoiser or make_denoiser(opts)
            _Runner(opts, denoiser, progress, notify, on_file_progress).run(todo)
        progress.report(1.0, "finished")
    except (Cancelled, KeyboardInterrupt) as exc:
        result.cancelled = True
        for item in plan.items:
            if item.status in (QUEUED, RUNNING):
                item.status, item.reason = SKIPPED, "cancelled"
                notify(item)
        if isinstance(exc, KeyboardInterrupt):
            _finish(result, opts, started)
            raise
    _finish(result, opts, started)
    return result


def _finish(result: BatchResult, opts: BatchOptions, started: float) -> None:
    result.seconds = time.perf_counter() - started
    if opts.report is not None:
        try:
            write_report(opts.report, result)
            result.report = opts.report
        except OSError as exc:  # never lose the job's outcome over its report
            result.report_error = f"cannot write the report {opts.report}: {exc.strerror or exc}"


@dataclass
class _Runner:
    """The denoise loop over the queue; Cancelled propagates (the caller marks what is left)."""

    opts: BatchOptions
    denoiser: Denoiser
    progress: Progress
    notify: Callable[[BatchItem], None]
    on_file_progress: Callable[[float], None] | None
    chooser: ModelChooser | None = None  # set by run() when no model is pinned (camera profiles)

    def run(self, todo: list[BatchItem]) -> None:
        if self.opts.model in (None, "", AUTO_MODEL):
            self.chooser = ModelChooser(self.opts.model, lambda name: make_denoiser(self.opts, name),
                                        first=self.denoiser)
        scale = self.opts.strength_scale
        auto = (lambda px: self.denoiser.auto_strength(px, scale=scale)) if self.opts.strength is None else None
        with closing(_decoded(todo, self.opts.prefetch, auto, self.opts.max_memory)) as decoded:
            for k, (item, loaded) in enumerate(decoded):
                self.one(k, len(todo), item, loaded)
                del loaded

    def one(self, k: int, n: int, item: BatchItem, loaded: _Loaded) -> None:
        self.progress.check_cancelled()
        label = f"{k + 1}/{n} {item.rel}"
        item.status = RUNNING
        self.notify(item)
        self.progress.report(k / n, label)
        start = time.perf_counter()
        try:
            file_progress = _FileProgress(self.progress, k, n, label, self.on_file_progress)
            _process(item, loaded, self.denoiser, self.opts, file_progress, self.chooser)
            item.status = DONE
        except Cancelled:
            raise
        except Exception as exc:  # one bad file never stops the job
            item.status, item.reason = FAILED, _failure_reason(exc, item.source)
        finally:
            item.seconds = loaded.seconds + time.perf_counter() - start
        self.notify(item)
        self.progress.report((k + 1) / n, label)


def _csv_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading quote,
    as OWASP advises; numbers stay numbers. A file named '=HYPERLINK(...).png' is shown, never run."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_report(path: Path, result: BatchResult) -> None:
    """JSON (summary + files) or CSV (one row per file), chosen by the suffix; written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [item.row() for item in result.items]
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(REPORT_FIELDS))
        writer.writeheader()
        writer.writerows([{k: _csv_cell(v) for k, v in row.items()} for row in rows])
        data = buf.getvalue().encode()
    else:
        summary = {**result.counts, "cancelled": result.cancelled, "seconds": round(result.seconds, 3)}
        data = (json.dumps({"summary": summary, "files": rows}, indent=2) + "\n").encode()
    atomic_write_bytes(path, data)
