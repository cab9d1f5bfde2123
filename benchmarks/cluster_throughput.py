"""Cluster throughput: photos per minute of a plain local batch vs `batch --cluster local:1` vs `local:2` on the
same photos, and the per-photo scheduling overhead of the Dask path.

    python benchmarks/cluster_throughput.py [--photos 8] [--megapixels 2] [--strength 15|auto] [--model NAME]

CPU seconds per photo (this process, plus every worker's) are measured beside the wall times: on a shared
machine they say what the path costs when the wall times say more about the other load.
The photos are ../shared/datasets/train/photos resized and cropped to 4:3 with seeded noise (the same maker
as batch_throughput.py, cached in /tmp/denoiser-batch-bench). Runs, back to back in this order, each into a
fresh folder:
  plain@1   the local batch with torch at 1 thread (what one single-threaded worker gets)
  local:1   --cluster local:1 (one worker process, 1 thread)
  local:2   --cluster local:2 (two worker processes, 1 thread each)
  plain@N   the local batch with torch's default threads (all cores)
  plain@1 again, to show how the machine's load drifted over the runs
A cluster's start (spawning workers, the version/model check, opening the model on each worker) is timed
apart from its photos, as is the engine's load for the plain runs. Scheduling overhead per photo: (a) the
round trip of an empty task through the same client, (b) (local:1 - plain@1) / photos.
Results go to benchmarks/results/cluster_throughput.json, with the load average around the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_throughput import WORK, make_photos

from denoiser.core.batch.cluster import ClusterExecute, ClusterSpec, check_workers, connect
from denoiser.core.batch.runner import BatchOptions, make_denoiser, plan_batch, run_batch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cluster_throughput.json"


def _options(folder: Path, out: Path, args: argparse.Namespace) -> BatchOptions:
    return BatchOptions(input_dir=folder, output_dir=out, strength=args.strength, model=args.model,
                        device="cpu", prefetch=True)


def _fresh(name: str) -> Path:
    out = WORK / "cluster-out" / name
    shutil.rmtree(out, ignore_errors=True)
    return out


def _cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def plain(folder: Path, args: argparse.Namespace, threads: int) -> dict:
    torch.set_num_threads(threads)
    opts = _options(folder, _fresh(f"plain{threads}"), args)
    t0 = time.perf_counter()
    engine = make_denoiser(opts)
    load = time.perf_counter() - t0
    t0, cpu = time.perf_counter(), _cpu_seconds()
    result = run_batch(opts, denoiser=engine, plan=plan_batch(opts))
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu
    assert result.counts["done"] == args.photos, result.counts
    return {"threads": threads, "start_s": round(load, 2), "photos_s": round(seconds, 2),
            "photos_per_min": round(args.photos / seconds * 60, 2),
            "cpu_s_per_photo": round(cpu / args.photos, 2)}


def _noop() -> int:
    return 0


def cluster(folder: Path, args: argparse.Namespace, workers: int) -> dict:
    opts = _options(folder, _fresh(f"local{workers}"), args)
    t0 = time.perf_counter()
    with connect(ClusterSpec(local_workers=workers)) as client:
        check_workers(client, opts.model)
        plan = plan_batch(opts)
        execute = ClusterExecute(client, opts)
        start = time.perf_counter() - t0  # the model opens inside execute, before the first task: timed below
        t1, cpu = time.perf_counter(), _cpu_seconds() + sum(client.run(_cpu_seconds).values())
        result = run_batch(opts, plan=plan, execute=execute)
        seconds = time.perf_counter() - t1
        cpu = _cpu_seconds() + sum(client.run(_cpu_seconds).values()) - cpu  # client + workers
        trips = []
        for _ in range(30):
            t2 = time.perf_counter()
            client.submit(_noop, pure=False).result()
            trips.append(time.perf_counter() - t2)
    assert result.counts["done"] == args.photos, result.counts
    trips.sort()
    return {"workers": workers, "threads_per_worker": 1, "start_s": round(start, 2),
            "photos_s_incl_model_open": round(seconds, 2),
            "photos_per_min": round(args.photos / seconds * 60, 2),
            "cpu_s_per_photo_client_and_workers": round(cpu / args.photos, 2),
            "empty_task_round_trip_ms": round(1000 * trips[len(trips) // 2], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=8)
    p.add_argument("--megapixels", type=float, default=2.0)
    p.add_argument("--strength", default="15", help="a fixed noise level, or auto")
    p.add_argument("--model", default=None)
    args = p.parse_args()
    args.strength = None if args.strength == "auto" else float(args.strength)
    folder, w, h = make_photos(args.photos, args.megapixels)
    load_before = os.getloadavg()
    default_threads = torch.get_num_threads()
    runs = {"plain@1": plain(folder, args, 1)}
    runs["local:1"] = cluster(folder, args, 1)
    runs["local:2"] = cluster(folder, args, 2)
    runs[f"plain@{default_threads}"] = plain(folder, args, default_threads)
    runs["plain@1 again"] = plain(folder, args, 1)  # the drift of the machine's load over the runs
    torch.set_num_threads(default_threads)
    load_after = os.getloadavg()
    base = runs["plain@1"]
    overhead_ms = (runs["local:1"]["photos_s_incl_model_open"] - base["photos_s"]) / args.photos * 1000
    report = {
        "photos": args.photos, "size": f"{w}x{h}", "megapixels": round(w * h / 1e6, 2),
        "strength": "auto" if args.strength is None else args.strength, "model": args.model or "default",
        "runs": runs,
        "local2_over_local1": round(runs["local:2"]["photos_per_min"] / runs["local:1"]["photos_per_min"], 3),
        "local1_cost_vs_plain_at_1_thread_pct": round(
            100 * (base["photos_per_min"] / runs["local:1"]["photos_per_min"] - 1), 1),
        "local1_cpu_cost_vs_plain_at_1_thread_pct": round(
            100 * (runs["local:1"]["cpu_s_per_photo_client_and_workers"] / base["cpu_s_per_photo"] - 1), 1),
        "scheduling_overhead_ms_per_photo": {
            "empty_task_round_trip": runs["local:1"]["empty_task_round_trip_ms"],
            "local1_minus_plain1": round(overhead_ms, 1)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after],
                    "note": "shared machine: a nice'd background training run was using the CPU during these runs; "
                            "the four runs were made back to back"},
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
