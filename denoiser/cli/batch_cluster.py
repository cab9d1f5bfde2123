"""`batch --cluster`: the terminal side of a Dask run (core.batch.cluster): connect, check the workers, one bar
with photos done, each worker's throughput and the ETA. Dask is imported only from here on."""
from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from denoiser.cli.common import signals_stop, stopped_status
from denoiser.core.progress import CancelToken
from denoiser.exit_codes import ExitCode


class ClusterBars(CancelToken):
    """Photos done (with the ETA tqdm keeps) and photos per minute of each worker; the run's cancel token."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.started = time.monotonic()
        self.by_worker: Counter[str] = Counter()
        self.bar = tqdm(total=total, desc="photos", unit="photo", file=sys.stderr, dynamic_ncols=True, disable=None)

    def on_result(self, item: Any, result: Any) -> None:
        self.bar.update(1)
        if result.worker:
            self.by_worker[result.worker] += 1
        minutes = max(time.monotonic() - self.started, 1e-3) / 60
        rates = ", ".join(f"{_short(w)} {n / minutes:.1f}/min" for w, n in sorted(self.by_worker.items()))
        self.bar.set_postfix_str(rates, refresh=True)
        if result.status == "failed":
            self.bar.write(f"failed: {item.rel}: {result.reason}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _short(address: str) -> str:
    return address.split("://")[-1]


def run_on_cluster(spec: Any, opts: Any, plan: Any, summary: Callable[[Any], None], io: str = "shared") -> int:
    """Run the planned job on the cluster; the same summary, report and exit codes as a local run."""
    from denoiser.core.batch.cluster import ClusterError, run_batch_on_cluster

    bars = ClusterBars(len(plan.todo))
    received: list[int] = []

    def ready(workers: dict) -> None:
        where = "through this machine" if io == "client" else "on the shared folders"
        bars.bar.write(f"cluster {spec.label}: {len(workers)} worker(s), same app version and model; files {where}",
                       file=sys.stderr)

    try:
        with signals_stop(bars, "stopping: running photos stop at their next tile... "
                                "(Ctrl-C again to abort)") as received:
            result = run_batch_on_cluster(spec, opts, plan, io, ready, bars.on_result, progress=bars)
    except ClusterError as exc:
        bars.close()
        print(f"denoiser batch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    bars.close()
    summary(result)
    if result.cancelled or received:
        return stopped_status(received)
    return ExitCode.OK if result.ok else ExitCode.FAILED
