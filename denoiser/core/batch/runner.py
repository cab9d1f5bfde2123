"""Folder jobs: clean every photo of a folder without ever losing one.

One bad file never stops the job (its error is recorded and the next file starts), a re-run skips
what is already done, cancel stops within one tile and leaves no partial file (saves are atomic),
and a report says what happened to each file, also when the job was stopped. Each photo is made by
core.pipeline.process_photo (the one per-photo path: claim, decode, Auto, model choice, denoise, controls,
note, atomic save); decoding the next photo (and measuring its noise map, with Auto) runs on a one-slot
prefetch thread while the current one is denoised. core.batch.cluster runs the same plan on Dask.
"""
from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from denoiser.core.batch.plan import (
    DONE,
    FAILED,
    LEVEL_FIELDS,
    QUEUED,
    RUNNING,
    SKIPPED,
    BatchError,
    BatchItem,
    BatchOptions,
    BatchPlan,
    parse_shard,
    plan_batch,
)
from denoiser.core.files import atomic_write_bytes
from denoiser.core.inference.engine import Denoiser, open_denoiser
from denoiser.core.model.profiles import AUTO_MODEL
from denoiser.core.pipeline import (
    EngineCache,
    PhotoOptions,
    PhotoResult,
    PhotoTask,
    Prepared,
    clean_stale_parts,
    prepare,
    process_photo,
)
from denoiser.core.progress import Cancelled, NullProgress, Progress

__all__ = ["BatchError", "BatchItem", "BatchOptions", "BatchPlan", "BatchResult", "plan_batch", "run_batch",
           "parse_shard", "write_report", "DONE", "FAILED", "QUEUED", "RUNNING", "SKIPPED"]

REPORT_FIELDS = ("file", "status", "reason", "seconds", "strength", *LEVEL_FIELDS, "model", "removed_detail_pct",
                 "output")

# on_file(index in the plan, number of files in the plan, item): called on each status change.
FileCallback = Callable[[int, int, BatchItem], None]
# execute(queue, notify, progress): make the queued photos, recording each outcome on its item and calling
# notify(item) on each change; the local loop by default, core.batch.cluster.ClusterExecute on Dask.
Execute = Callable[[list[BatchItem], Callable[[BatchItem], None], Progress], None]


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


def photo_options(opts: BatchOptions, run_id: str = "") -> PhotoOptions:
    """The per-photo options of a folder job (what a cluster worker receives)."""
    return PhotoOptions(fmt=opts.fmt, quality=opts.quality, strength=opts.strength,
                        strength_scale=opts.strength_scale, overwrite=opts.overwrite, model=opts.model,
                        device=opts.device, tile=opts.tile, passes=opts.passes, controls=opts.controls,
                        max_memory=opts.max_memory, run_id=run_id or uuid.uuid4().hex, dng=opts.dng,
                        precision=opts.precision)


def task_of(item: BatchItem) -> PhotoTask:
    assert item.output is not None
    return PhotoTask(item.source, item.output, str(item.rel))


def apply_result(item: BatchItem, result: PhotoResult) -> None:
    """Record a photo's outcome on its plan item (the report's row)."""
    item.status, item.reason, item.seconds = result.status, result.reason, result.seconds
    item.sigma, item.level = result.sigma, result.level
    item.model, item.detail_score = result.model, result.detail_score


def _prepared(items: list[BatchItem], prefetch: bool, options: PhotoOptions,
              engines: EngineCache) -> Generator[tuple[BatchItem, Prepared | None], None, None]:
    """Yield each item with its decoded photo; with prefetch, decode one ahead on a thread."""
    if not prefetch:
        for item in items:
            yield item, None
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-decode")
    try:
        nxt: Future | None = pool.submit(prepare, task_of(items[0]), options, engines) if items else None
        for i, item in enumerate(items):
            assert nxt is not None
            ready = nxt.result()
            nxt = pool.submit(prepare, task_of(items[i + 1]), options, engines) if i + 1 < len(items) else None
            yield item, ready
            del ready  # drop our reference before the next decode lands
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def make_denoiser(opts: BatchOptions, model: str | None = None) -> Denoiser:
    """The engine for `model` (default: the job's; "auto" loads the shipped default, profiles come per photo)."""
    model = opts.model if model is None else model
    return open_denoiser(None if model == AUTO_MODEL else model, device=opts.device, tile=opts.tile,
                         precision=opts.precision)


def run_batch(opts: BatchOptions, denoiser: Denoiser | None = None, progress: Progress | None = None,
              on_file: FileCallback | None = None, on_file_progress: Callable[[float], None] | None = None,
              plan: BatchPlan | None = None, execute: Execute | None = None) -> BatchResult:
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
        clean_stale_parts([item.output for item in plan.items
                           if item.output is not None and (item.status == QUEUED or item.output_written)])
        if todo and execute is not None:
            execute(todo, notify, progress)
        elif todo:
            engines = EngineCache()
            engines.put(denoiser or make_denoiser(opts), opts.model, opts.device, opts.tile, opts.precision)
            _Runner(opts, engines, progress, notify, on_file_progress).run(todo)
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
    engines: EngineCache
    progress: Progress
    notify: Callable[[BatchItem], None]
    on_file_progress: Callable[[float], None] | None

    def run(self, todo: list[BatchItem]) -> None:
        options = photo_options(self.opts)
        with closing(_prepared(todo, self.opts.prefetch, options, self.engines)) as stream:
            for k, (item, ready) in enumerate(stream):
                self.one(k, len(todo), item, options, ready)
                del ready

    def one(self, k: int, n: int, item: BatchItem, options: PhotoOptions, ready: Prepared | None) -> None:
        self.progress.check_cancelled()
        label = f"{k + 1}/{n} {item.rel}"
        item.status = RUNNING
        self.notify(item)
        self.progress.report(k / n, label)
        file_progress = _FileProgress(self.progress, k, n, label, self.on_file_progress)
        apply_result(item, process_photo(task_of(item), options, self.engines, file_progress, ready))
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
