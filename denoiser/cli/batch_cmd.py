"""`denoiser batch`: clean a whole folder, with an overall bar (files, ETA), a per-file bar and a summary.

Exit codes: 0 every file done or skipped, 1 some file failed, 2 usage error, 130 (Ctrl-C) or 143 (SIGTERM)
stopped. Ctrl-C or SIGTERM stops at the next tile, writes the report and says how to resume; a second aborts.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from denoiser.cli.common import (
    DNG_HELP,
    add_control_options,
    add_memory_option,
    add_model_options,
    add_precision_option,
    controls_from,
    memory_limit,
    parse_quality,
    parse_strength,
    signals_stop,
    stopped_status,
)
from denoiser.cli.strength import add_strength_scale_option, scale_conflict
from denoiser.core.io.formats import DEFAULT_TEMPLATE, SAVE_FORMATS
from denoiser.core.progress import CancelToken
from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="clean every photo of a folder (resumable; never touches the originals)",
                       description="Clean every photo of IN_DIR into OUT_DIR, mirroring its sub-folders. "
                                   "Files whose output exists are skipped, so re-running resumes a stopped job.")
    p.add_argument("input_dir", type=Path, metavar="IN_DIR", help="folder of photos")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR",
                   help="output folder (not the input folder or inside it)")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--include", action="append", default=[], metavar="PAT",
                   help="only files whose name or relative path matches this glob (repeatable, case-insensitive)")
    p.add_argument("--exclude", action="append", default=[], metavar="PAT",
                   help="leave out files matching this glob (repeatable)")
    p.add_argument("--name", default=DEFAULT_TEMPLATE, metavar="TEMPLATE",
                   help="output file name; fields {stem} {ext} {name} {parent} (default: %(default)s)")
    p.add_argument("--format", dest="fmt", choices=SAVE_FORMATS, default="keep", help="output format (default: keep)")
    p.add_argument("--quality", type=parse_quality, default=95,
                   help="JPEG, WebP, HEIC and AVIF quality 1..100 (default: 95)")
    add_strength_scale_option(p)
    p.add_argument("--strength", type=parse_strength, default=None, metavar="auto|SIGMA",
                   help="noise level 0..255, or auto to estimate it for each photo (default: auto)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of skipping them")
    p.add_argument("--cluster", metavar="ADDRESS|local:N",
                   help="make the photos on a Dask cluster: a scheduler address (tcp://host:8786) whose workers "
                        "share the folders, or local:N worker processes here; plan, report and resume as without")
    p.add_argument("--cluster-io", choices=("shared", "client"), default="shared",
                   help="with --cluster: shared = workers read and write the folders (a shared file system; "
                        "default), client = photos travel through this machine")
    p.add_argument("--shard", metavar="K/N", help="process only the K-th of N disjoint slices (1-based): for "
                                                  "machines that share the folders but no network")
    p.add_argument("--report", type=Path, metavar="FILE", help="write a per-file report (.json or .csv)")
    add_model_options(p)
    add_precision_option(p)
    add_memory_option(p)
    p.add_argument("--dng", choices=("linear", "cfa"), default="linear", help=DNG_HELP)
    add_control_options(p)
    p.add_argument("--allow-inside", action="store_true",
                   help="allow OUT_DIR inside IN_DIR (an output is still never written over an input)")
    p.set_defaults(func=run)


class _Bars(CancelToken):
    """Overall bar (files, ETA) and per-file bar; also the job's cancel token."""

    def __init__(self, total_files: int) -> None:
        super().__init__()
        self.current = -1
        self.files = tqdm(total=total_files, desc="files", unit="file", position=0, file=sys.stderr,
                          dynamic_ncols=True, disable=None)
        self.photo = tqdm(total=100, desc="photo", unit="%", position=1, leave=False, file=sys.stderr,
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                          dynamic_ncols=True, disable=None)

    def on_file(self, index: int, total: int, item: Any) -> None:
        if item.status == "running":
            self.current = index
            self.photo.reset(total=100)
            name = str(item.rel)
            self.photo.set_description_str(name if len(name) <= 40 else "…" + name[-39:], refresh=True)
        elif index == self.current and item.status in ("done", "failed"):
            self.files.update(1)
            if item.status == "failed":
                self.files.write(f"failed: {item.rel}: {item.reason}", file=sys.stderr)

    def on_fraction(self, fraction: float) -> None:
        target = max(0.0, min(1.0, fraction)) * 100
        if target > self.photo.n:
            self.photo.update(target - self.photo.n)

    def close(self) -> None:
        self.photo.close()
        self.files.close()


def _options(args: argparse.Namespace) -> Any:
    from denoiser.core.batch.runner import BatchOptions, parse_shard

    return BatchOptions(
        input_dir=args.input_dir, output_dir=args.output, recursive=args.recursive,
        include=tuple(args.include), exclude=tuple(args.exclude), name_template=args.name, fmt=args.fmt,
        quality=args.quality, strength=args.strength, strength_scale=args.strength_scale, overwrite=args.overwrite,
        shard=parse_shard(args.shard) if args.shard else None, report=args.report,
        allow_inside=args.allow_inside, max_memory=memory_limit(args), model=args.model, device=args.device,
        tile=args.tile,
        passes=args.passes, controls=controls_from(args), dng=args.dng, precision=args.precision)


def _summary(result: Any) -> None:
    c = result.counts
    existing = sum(1 for i in result.skipped if i.reason == "output exists")
    lines = [f"{'stopped' if result.cancelled else 'finished'} in {result.seconds:.1f} s: "
             f"{c['done']} done, {c['skipped']} skipped ({existing} already done), {c['failed']} failed"]
    used = Counter(i.model for i in result.done if i.model)
    if len(used) > 1:  # camera profiles took some photos (--model auto)
        lines.append("  models: " + ", ".join(f"{name} ({n})" for name, n in used.most_common()))
    flagged = sorted((i for i in result.done if (i.detail_score or 0) >= 1.0), key=lambda i: -i.detail_score)
    if flagged:  # where the removed signal has structure: worth a look (core.inference.detail_map)
        lines.append("  check for removed detail: " + ", ".join(f"{i.rel} ({i.detail_score:.1f} %)"
                                                               for i in flagged[:5]))
    for item in result.failed:
        lines.append(f"  failed  {item.rel}: {item.reason}")
    for item in result.skipped:
        if item.reason not in ("output exists", "cancelled"):
            lines.append(f"  skipped {item.rel}: {item.reason}")
    if result.cancelled:
        lines.append("  run the same command again to resume: finished files are skipped")
    if result.report:
        lines.append(f"  report: {result.report}")
    if result.report_error:
        lines.append(f"  {result.report_error}")
    print("\n".join(lines))


def _cluster(text: str) -> Any:
    """The --cluster spec, its scheduler checked reachable (core.batch.cluster.ClusterError otherwise)."""
    from denoiser.core.batch.cluster import ClusterSpec, check_reachable

    spec = ClusterSpec.parse(text)
    check_reachable(spec)
    return spec


def run(args: argparse.Namespace) -> int:
    from denoiser.core.batch.runner import BatchError, make_denoiser, plan_batch, run_batch
    from denoiser.core.files import write_problem
    from denoiser.core.model.file import ModelFileError

    if scale_conflict(args):
        print(f"denoiser batch: {scale_conflict(args)}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        cluster = _cluster(args.cluster) if args.cluster else None  # an unreachable scheduler: before planning
        opts = _options(args)
        plan = plan_batch(opts)
        for folder in (opts.output_dir, *([opts.report.parent] if opts.report else [])):
            problem = write_problem(folder) if plan.todo or folder != opts.output_dir else ""
            if problem:
                raise BatchError(f"{folder}: {problem}")
        denoiser = make_denoiser(opts) if plan.todo and cluster is None else None
    except (BatchError, ModelFileError, ValueError) as exc:
        print(f"denoiser batch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if cluster is not None and plan.todo:
        from denoiser.cli.batch_cluster import run_on_cluster

        return run_on_cluster(cluster, opts, plan, _summary, args.cluster_io)
    bars = _Bars(len(plan.todo))
    try:
        with signals_stop(bars, "stopping after the current tile... (Ctrl-C again to abort)") as received:
            result = run_batch(opts, denoiser=denoiser, progress=bars, on_file=bars.on_file,
                               on_file_progress=bars.on_fraction, plan=plan)
    finally:
        bars.close()
    _summary(result)
    if result.cancelled or received:  # a signal that came as the last photo finished still says "stopped"
        return stopped_status(received)
    return ExitCode.OK if result.ok else ExitCode.FAILED
