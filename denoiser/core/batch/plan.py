"""Planning a folder job before any pixel is decoded: options, discovery, naming, sharding, skip-existing.

Everything here is cheap and side-effect free, so the CLI can reject a bad command line (exit 2) and the
window can fill its queue table before the first photo is loaded.
"""
from __future__ import annotations

import fnmatch
import os
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from denoiser.core.files import UnsafePathError, resolved
from denoiser.core.inference.controls import Controls
from denoiser.core.inference.ensemble import check_passes
from denoiser.core.io.formats import (
    DEFAULT_TEMPLATE,
    DNG_EXTENSIONS,
    FORMAT_EXTENSIONS,
    RAW_EXTENSIONS,
    SAVE_FORMATS,
    SUPPORTED_EXTENSIONS,
    dng_problem,
    format_extensions,
    planned_format,
)
from denoiser.core.noise.level import NoiseLevel, requested_level

TEMPLATE_FIELDS = frozenset({"stem", "ext", "name", "parent"})
# Longest output file name, in bytes: NAME_MAX (255 on every common file system) less what the temp file
# adds around it while it is written (".<name>.XXXXXXXX.part", core.io.photo), so the temp name fits too.
MAX_NAME_BYTES = 255 - len("..XXXXXXXX.part")
OUTPUT_FORMATS = SAVE_FORMATS

# Statuses of a file in a job (the report uses the last three).
QUEUED, RUNNING, DONE, SKIPPED, FAILED = "queued", "running", "done", "skipped", "failed"


class BatchError(ValueError):
    """The job as a whole cannot run (bad options or folders): a usage error, not a per-file one."""


@dataclass(frozen=True)
class BatchOptions:
    """Everything that defines a folder job; each default lives here only."""

    input_dir: Path
    output_dir: Path
    recursive: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    name_template: str = DEFAULT_TEMPLATE
    fmt: str = "keep"
    quality: int = 95
    strength: float | None = None  # None: estimate the noise level of each photo
    strength_scale: float = 1.0  # with Auto: the scale on each photo's noise map (1 = Auto)
    overwrite: bool = False
    shard: tuple[int, int] | None = None  # (K, N): the K-th (1-based) of N disjoint slices
    report: Path | None = None  # .json or .csv
    allow_inside: bool = False  # allow writing into (a folder inside) the input folder
    model: str | None = None  # name or .safetensors path; None: the shipped default
    device: str = "auto"
    tile: int | None = None  # None: the engine's default (the engine validates it)
    passes: int = 1  # self-ensemble views per photo (core.inference.ensemble): 1, 2, 4 or 8
    prefetch: bool = True  # decode the next photo while denoising this one
    max_memory: int | None = None  # bytes a photo may need (core.io.memory); None: what is free when it opens
    controls: Controls = Controls()  # luma/chroma strengths and detail (inference.controls); default: the plain run
    dng: str = "linear"  # a camera raw's DNG: "linear" | "cfa" (core.pipeline.PhotoOptions.dng)
    precision: str = "fp32"  # "fp32" | "int8": the model's INT8 build (core.pipeline.PhotoOptions.precision)

    def validate(self) -> None:
        """Raise BatchError naming the first bad option; the folders are checked too."""
        if not self.input_dir.is_dir():
            raise BatchError(f"input folder not found: {self.input_dir}")
        if self.fmt not in OUTPUT_FORMATS:
            raise BatchError(f"unknown output format {self.fmt!r} (choose from {', '.join(OUTPUT_FORMATS)})")
        if not 1 <= self.quality <= 100:
            raise BatchError(f"quality must be 1..100, got {self.quality}")
        try:
            self.level()
            check_passes(self.passes)
        except ValueError as exc:
            raise BatchError(str(exc)) from None
        if self.shard is not None:
            k, n = self.shard
            if not (n >= 1 and 1 <= k <= n):
                raise BatchError(f"shard must be K/N with 1 <= K <= N, got {k}/{n}")
        if self.report is not None and self.report.suffix.lower() not in (".json", ".csv"):
            raise BatchError(f"report must end in .json or .csv: {self.report}")
        check_template(self.name_template)
        self._check_folders()
        if self.report is not None:
            check_report(self.report)

    def level(self) -> NoiseLevel | None:
        """The job's fixed level, or None for Auto (measured per photo, then scaled by strength_scale); raises
        ValueError for a level or scale out of range (noise.level's checks, the CLI's and the window's)."""
        return requested_level(self.strength, self.strength_scale)

    def _check_folders(self) -> None:
        try:
            inp, out = resolved(self.input_dir), resolved(self.output_dir)
            report = None if self.report is None else resolved(self.report)
        except UnsafePathError as exc:
            raise BatchError(str(exc)) from None
        if self.allow_inside:
            return
        if is_within(out, inp):
            raise BatchError(f"output folder {self.output_dir} is the input folder or inside it; "
                             "choose another folder (or allow writing inside the input explicitly)")
        if report is not None and is_within(report, inp):
            raise BatchError(f"report {self.report} would be written inside the input folder")


def check_report(path: Path) -> None:
    """A report is written over only when the file there is an earlier report of this tool (a re-run that
    resumes a job rewrites its own report); any other file is refused, never replaced."""
    if path.is_dir():
        raise BatchError(f"report {path} is a folder; give a file name ending in .json or .csv")
    if not path.exists():
        return
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        raise BatchError(f"report {path} exists and cannot be read ({exc.strerror or exc}); "
                         "choose another report file") from None
    ours = head.startswith("file,status,reason,") if path.suffix.lower() == ".csv" else \
        head.lstrip().startswith('{\n  "summary"')
    if not ours:
        raise BatchError(f"report {path} already exists and is not a report of this tool; choose another "
                         "report file (it is never overwritten)")


@dataclass
class BatchItem:
    """One file of the job: where it comes from, where it goes, and what happened to it."""

    rel: PurePosixPath  # relative to the input folder
    source: Path
    output: Path | None
    status: str = QUEUED
    reason: str = ""
    seconds: float = 0.0
    sigma: float | None = None  # noise level used (estimated unless fixed), 0..255
    level: NoiseLevel | None = None  # the level used, without its map (mode, scale, estimator: the report's record)
    model: str = ""  # the model that made the output (a camera profile when one matched)
    detail_score: float | None = None  # % of the photo where the removed signal has structure (inference.detail_map)

    def row(self) -> dict[str, object]:
        return {"file": display_name(self.rel), "status": self.status, "reason": display_name(self.reason),
                "seconds": round(self.seconds, 3),
                "strength": None if self.sigma is None else round(self.sigma, 2),
                **_level_columns(self.level),
                "model": self.model,
                "removed_detail_pct": None if self.detail_score is None else round(self.detail_score, 2),
                "output": display_name(self.output) if self.output is not None and self.output_written else ""}

    @property
    def output_written(self) -> bool:
        """The output exists because of this job or an earlier one."""
        return self.status == DONE or (self.status == SKIPPED and self.reason == "output exists")


@dataclass
class BatchPlan:
    items: list[BatchItem] = field(default_factory=list)

    @property
    def todo(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == QUEUED]


LEVEL_FIELDS = ("strength_mode", "strength_scale", "noise_map_mean", "estimator")


def _level_columns(level: NoiseLevel | None) -> dict[str, object]:
    """The report's columns for a level's record (empty where no photo was denoised)."""
    record = level.to_record() if level is not None else {}
    return {"strength_mode": record.get("mode", ""), "strength_scale": record.get("scale"),
            "noise_map_mean": record.get("map_mean"), "estimator": record.get("estimator", "")}


def is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def parse_shard(spec: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 1-based; BatchError on anything else."""
    try:
        k_text, n_text = spec.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise BatchError(f"shard must look like K/N (e.g. 2/3), got {spec!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise BatchError(f"shard must be K/N with 1 <= K <= N, got {spec!r}")
    return k, n


def check_template(template: str) -> None:
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise BatchError(f"bad name template {template!r}: {exc}") from None
    if any(spec or conv for _, spec, conv in parts):  # '{stem:>400000000}' would build a 400 MB name
        raise BatchError(f"bad name template {template!r}: only plain fields such as {{stem}} are allowed, "
                         "without a format (':...') or conversion ('!r')")
    fields = {f for f, _, _ in parts}
    unknown = fields - TEMPLATE_FIELDS
    if unknown or "" in fields:
        raise BatchError(f"bad name template {template!r}: unknown field(s) {sorted(unknown) or ['{}']}; "
                         f"use {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS))}")
    if "stem" not in fields and "name" not in fields:
        raise BatchError(f"name template {template!r} needs {{stem}} or {{name}}, or every file gets one name")
    if "/" in template or "\\" in template or template.strip() in (".", ".."):
        raise BatchError(f"name template {template!r} must give a file name, not a path")


def output_format(source: Path, fmt: str) -> str:
    """The format a run writes for this source: a RAW kept as it is becomes a DNG (its denoised raw)."""
    return planned_format(source.suffix, fmt)


def output_name(template: str, source: Path, fmt: str) -> str:
    """Render the template; known before decoding, so skip-existing costs nothing. The name always ends
    in an extension of the output format (".png" is appended to "a.jpg" when converting to PNG)."""
    name = output_format(source, fmt)
    exts = format_extensions(name)
    ext = source.suffix[1:] if fmt == "keep" and source.suffix.lower() in exts else exts[0][1:]
    rendered = template.format(stem=source.stem, ext=ext, name=source.name, parent=source.parent.name)
    return rendered if Path(rendered).suffix.lower() in exts else f"{rendered}.{ext}"


def name_problem(name: str) -> str:
    """Why a file of this name cannot be created ("" when it can): the planning-time check that turns
    'File name too long' into one file's failure instead of a crash of the whole job."""
    size = len(os.fsencode(name))
    if size > MAX_NAME_BYTES:
        return (f"the output name would be {size} bytes long, more than the {MAX_NAME_BYTES} a file name may "
                "take; rename the file or use a shorter --name template")
    return ""


def display_name(text: object) -> str:
    """A path as text that every terminal and report encoding can take: bytes of a file name that are not
    UTF-8 are shown as \\xNN instead of crashing the print or the report."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")


def _matches(rel: PurePosixPath, patterns: tuple[str, ...]) -> bool:
    """A glob matches the file name or the relative path, case-insensitively (cameras write .JPG)."""
    name, path = rel.name.lower(), str(rel).lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) or fnmatch.fnmatchcase(path, p.lower()) for p in patterns)


def walk_files(root: Path, recursive: bool, skip_dirs: tuple[Path, ...] = ()) -> list[PurePosixPath]:
    """Relative paths of visible regular files (hidden files and folders, like temp files, are ignored)."""
    found: list[PurePosixPath] = []
    skip = {d.resolve() for d in skip_dirs}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if recursive and not d.startswith(".") and (here / d).resolve() not in skip)
        for name in files:
            if name.startswith(".") or not (here / name).is_file():
                continue
            found.append(PurePosixPath((here / name).relative_to(root).as_posix()))
    return sorted(found)


def select(opts: BatchOptions, rels: list[PurePosixPath]) -> list[BatchItem]:
    """Files selected by include/exclude; unsupported types are kept, marked skipped with the reason."""
    items = []
    for rel in rels:
        if opts.include and not _matches(rel, opts.include):
            continue
        if opts.exclude and _matches(rel, opts.exclude):
            continue
        item = BatchItem(rel, opts.input_dir / rel, None)
        if rel.suffix.lower() not in SUPPORTED_EXTENSIONS:
            item.status, item.reason = SKIPPED, f"unsupported file type ({rel.suffix or 'no extension'})"
        items.append(item)
    return items


def take_shard(items: list[BatchItem], shard: tuple[int, int] | None) -> list[BatchItem]:
    """Every N-th file by sorted relative path, starting at the K-th: disjoint, covering, balanced."""
    if shard is None:
        return items
    k, n = shard
    ordered = sorted(items, key=lambda i: str(i.rel))
    return ordered[k - 1::n]


def assign_outputs(items: list[BatchItem], opts: BatchOptions, inputs: set[Path]) -> None:
    """Name each output, mirroring the input tree; refuse names that hit an input or another output.

    `inputs` are the resolved paths of every file in the input folder, selected or not. With the output
    inside the input folder (allow_inside), a file that is the output this job names for another input is
    that job's earlier result: skipped as such, never denoised again into x-denoised-denoised.
    """
    planned: list[tuple[BatchItem, Path, str]] = []  # (item, resolved output, why it cannot be made)
    for item in items:
        if item.status == QUEUED:
            name = output_name(opts.name_template, item.source, opts.fmt)
            item.output = opts.output_dir / item.rel.parent / name
            try:
                planned.append((item, resolved(item.output),
                                name_problem(name) or dng_problem(item.source.suffix, opts.fmt)))
            except UnsafePathError as exc:
                planned.append((item, item.output, str(exc)))
    ours = _earlier_outputs(planned) if opts.allow_inside else {}
    claimed: dict[Path, PurePosixPath] = {}
    for item, key, problem in planned:
        out = item.output
        assert out is not None  # named in the loop above
        if id(item) in ours:
            item.status, item.reason = SKIPPED, f"an output of this job (from {ours[id(item)][1]})"
        elif problem:
            item.status, item.reason = FAILED, problem
        elif (key in inputs and key not in {source for source, _ in ours.values()}) or _same(key, item.source):
            item.status, item.reason = FAILED, f"output {out} would overwrite an input file"
        elif key in claimed:
            item.status, item.reason = FAILED, (f"output {out} is also the output of {claimed[key]}; "
                                                "put {ext} or {name} in the name template")
        else:
            claimed[key] = item.rel
            if out.exists() and not opts.overwrite:
                item.status, item.reason = SKIPPED, "output exists"


def _earlier_outputs(planned: list[tuple[BatchItem, Path, str]]) -> dict[int, tuple[Path, PurePosixPath]]:
    """id(item) -> (its resolved path, the input whose output it is) for each queued input that another
    queued input names as its output (a re-run writing inside its own input folder)."""
    makers = {key: item for item, key, problem in planned if not problem}
    found = {}
    for item, _, _ in planned:
        source = _resolved_or_self(item.source)
        maker = makers.get(source)
        if maker is not None and maker is not item:
            found[id(item)] = (source, maker.rel)
    return found


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def plan_batch(opts: BatchOptions) -> BatchPlan:
    """Validate, discover, shard and name: the full queue, with skipped and refused files already marked."""
    opts.validate()
    skip_dirs = (opts.output_dir,) if opts.recursive else ()
    rels = walk_files(opts.input_dir, opts.recursive, skip_dirs)
    items = take_shard(select(opts, rels), opts.shard)
    assign_outputs(items, opts, {(opts.input_dir / rel).resolve() for rel in rels})
    return BatchPlan(items)


def plan_files(sources: list[Path], fmt: str = "keep", overwrite: bool = False, output: Path | None = None,
               out_dir: Path | None = None) -> BatchPlan:
    """The queue of a `denoise` run (named files, one output file or an output folder), checked before any
    model or pixel is loaded: a missing input, an output that is an input of the same run (--overwrite
    included), two inputs that would write one output, and an existing output without `overwrite` are
    marked failed with the reason, as plan_batch does for a folder."""
    if (output is None) == (out_dir is None):
        raise BatchError("give either one output file or an output folder")
    if output is not None and len(sources) != 1:
        raise BatchError("one output file takes one input; use an output folder for several")
    inputs = {_resolved_or_self(Path(s)) for s in sources}
    claimed: dict[Path, PurePosixPath] = {}
    items = []
    for source in map(Path, sources):
        item = BatchItem(PurePosixPath(source.as_posix()), source, None)
        items.append(item)
        if not source.is_file():
            item.status, item.reason = FAILED, _missing_reason(source)
            continue
        item.output = _single_output(source, fmt, output, out_dir)
        problem = name_problem(item.output.name)
        try:
            key = resolved(item.output)
        except UnsafePathError as exc:
            problem = problem or str(exc)
        if problem:
            item.status, item.reason = FAILED, problem
            continue
        other = next((s for s in sources if _same(key, Path(s))), None)
        if key in inputs or other is not None:
            item.status, item.reason = FAILED, (f"output {item.output} is an input of this run "
                                                f"({other or key}); choose another output name or folder")
        elif key in claimed:
            item.status, item.reason = FAILED, (f"output {item.output} is also the output of {claimed[key]}; "
                                                "denoise these files into different folders")
        elif _format_problem(item.output, fmt, source):
            item.status, item.reason = FAILED, _format_problem(item.output, fmt, source)
        elif item.output.is_dir():
            item.status, item.reason = FAILED, f"output {item.output} is a folder"
        elif item.output.exists() and not overwrite:
            item.status, item.reason = FAILED, f"output {item.output} already exists; add --overwrite to replace it"
        if item.status == QUEUED:
            claimed[key] = item.rel
    return BatchPlan(items)


def _resolved_or_self(path: Path) -> Path:
    try:
        return resolved(path)
    except UnsafePathError:
        return path  # a link loop: refused as that file's failure below


def _missing_reason(source: Path) -> str:
    if source.is_symlink() and not source.exists():
        try:
            resolved(source)
        except UnsafePathError:
            return "is a symbolic link loop; remove or fix the link"
        return "is a link to a file that does not exist"
    return "file not found" if not source.exists() else "not a file"


def _single_output(source: Path, fmt: str, output: Path | None, out_dir: Path | None) -> Path:
    """`output` (its format's extension appended when it has no image extension), or
    OUT_DIR/<stem>-denoised.<ext>, named from the file name alone as a folder job names it."""
    if out_dir is not None:
        return out_dir / output_name(DEFAULT_TEMPLATE, source, fmt)
    assert output is not None
    if output.suffix.lower() in SUPPORTED_EXTENSIONS:
        return output
    name = output_format(source, fmt)
    return output.with_name(output.name + format_extensions(name)[0])


def _format_problem(output: Path, fmt: str, source: Path) -> str:
    """Why this output name cannot be written for this source and format ("" when it can)."""
    suffix = output.suffix.lower()
    if dng_problem(source.suffix, fmt):
        return dng_problem(source.suffix, fmt)
    if suffix in DNG_EXTENSIONS:  # a raw's own output: its denoised raw
        if dng_problem(source.suffix, "dng"):  # only a camera raw becomes a DNG
            return f"cannot save {output} in a camera RAW format; name it .tif (or .png, .jpg, .webp)"
        return "" if fmt in ("keep", "dng") else f"{output} ends in .dng but --format is {fmt}; make them agree"
    if fmt == "dng":
        return f"{output}: --format dng writes .dng files; name it so"
    if suffix in RAW_EXTENSIONS:
        return f"cannot save {output} in a camera RAW format; name it .tif (or .png, .jpg, .webp)"
    by_suffix = next((name for name, exts in FORMAT_EXTENSIONS.items() if suffix in exts), None)
    if fmt != "keep" and by_suffix is not None and by_suffix != fmt.upper():
        return f"{output} ends in {output.suffix} but --format is {fmt}; make them agree"
    return ""
