"""`batch --cluster ADDRESS|local:N`: the same folder job on a Dask distributed cluster.

The plan (discovery, naming, skip-existing, collisions) is made once on the client; each photo is one task
(core.batch.cluster_worker.run_photo: core.pipeline.process_photo on the worker); results stream back as they
finish and fill the same report a local run writes, one row per photo. Dask is imported only here, and only
when a cluster is asked for.

- `local:N` starts a LocalCluster of N single-threaded worker processes on this machine; an address
  (`tcp://10.0.0.5:8786`) joins a running scheduler (`dask scheduler`, `dask worker tcp://…`, SSHCluster,
  dask-jobqueue). A scheduler that cannot be reached is refused in one line naming the address, at once.
- Before any work every worker must run the same app version, hold the same model bytes (SHA-256; its
  heavy-noise expert's too) and the same Auto estimator as the client; otherwise the run is refused naming the
  worker and what differs.
- Storage: workers read the inputs and write the outputs on a path they share with the client (io="shared"),
  or the bytes travel through the client for machines that share no file system (io="client",
  core.batch.cluster_io).
- Faults: Dask reschedules the photo of a worker that dies on another worker; saves are atomic (an output is
  complete or absent), each output is claimed (core.claims) while it is made, and the client counts each
  plan item once, so every photo is done exactly once. Stopping the client sets the run's cancel event
  (tasks stop at their next tile) and cancels what has not started.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from denoiser.core.batch.plan import DONE, FAILED, SKIPPED, BatchError, BatchItem, BatchOptions, BatchPlan
from denoiser.core.batch.runner import BatchResult, apply_result, photo_options, run_batch, task_of
from denoiser.core.pipeline import PhotoResult, failure_reason
from denoiser.core.progress import Cancelled, Progress

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT = 5.0  # s: a scheduler that does not answer this fast is unreachable
WORKERS_TIMEOUT = 60.0  # s: how long to wait for the first worker to join
STOP_GRACE = 15.0  # s: after a stop, how long running tasks get to reach their next tile
IO_MODES = ("shared", "client")  # workers use the shared folders | the bytes go through the client


class ClusterError(BatchError):
    """The cluster cannot run this job (unreachable, no workers, a worker that differs): a usage error."""


@dataclass(frozen=True)
class ClusterSpec:
    """`local:N` (N worker processes here) or a scheduler address."""

    address: str = ""
    local_workers: int = 0

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        text = text.strip()
        if text.lower().startswith("local:"):
            count = text[6:]
            if not count.isdigit() or not 1 <= int(count) <= 256:
                raise ClusterError(f"--cluster local:N takes a number of worker processes 1..256, got {text!r}")
            return cls(local_workers=int(count))
        parts = urlsplit(text if "://" in text else f"tcp://{text}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ClusterError(f"--cluster takes a scheduler address such as tcp://10.0.0.5:8786 or local:N, "
                               f"got {text!r}")
        return cls(address=f"{parts.scheme}://{parts.hostname}:{port}")

    @property
    def label(self) -> str:
        return f"local:{self.local_workers}" if self.local_workers else self.address


def check_reachable(spec: ClusterSpec, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse an address whose scheduler does not accept a connection, in one line naming it."""
    if spec.local_workers:
        return
    parts = urlsplit(spec.address)
    if parts.scheme not in ("tcp", "tls"):
        return  # other transports are left to Dask's own connect timeout
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {spec.address} ({reason}); start it with "
                           "`dask scheduler` there, or check the address and the firewall") from None


@contextmanager
def connect(spec: ClusterSpec, timeout: float = CONNECT_TIMEOUT) -> Iterator[Client]:
    """A Client on the cluster (a LocalCluster for local:N, closed on exit)."""
    check_reachable(spec, timeout)
    import distributed

    for name in ("distributed", "tornado"):  # Dask's chatter (workers joining, nannies closing) is not ours
        if logging.getLogger(name).getEffectiveLevel() > logging.DEBUG:
            logging.getLogger(name).setLevel(logging.ERROR)
    cluster = None
    try:
        if spec.local_workers:
            cluster = distributed.LocalCluster(n_workers=spec.local_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", host="127.0.0.1",
                                               silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(spec.address, timeout=f"{max(timeout, 1.0)}s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot connect to the Dask scheduler at {spec.label} ({exc})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_workers(client: Client, model: str | None, timeout: float = WORKERS_TIMEOUT) -> dict[str, dict]:
    """Every worker's identity, after checking it matches this machine's (ClusterError naming the first that
    does not: another app version, other model bytes or heavy-noise expert, another Auto estimator)."""
    from denoiser.core.batch.cluster_worker import identity

    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(f"no Dask worker joined the scheduler within {timeout:g} s; start some with "
                           "`dask worker <scheduler address>`") from None
    mine = identity(model)
    if str(mine["model"]).startswith("missing"):
        raise ClusterError(f"the model is not on this machine: {str(mine['model'])[9:]}")
    theirs: dict[str, dict] = client.run(identity, model)
    words = {"app": "app version", "model": "model file (SHA-256)", "expert": "heavy-noise expert (SHA-256)",
             "estimator": "Auto's noise estimator"}
    for address, ident in sorted(theirs.items()):
        for key, word in words.items():
            if ident.get(key) != mine[key]:
                raise ClusterError(
                    f"worker {address} ({ident.get('host')}) has another {word}: {_short(ident.get(key))} there, "
                    f"{_short(mine[key])} here; install the same version and models on every worker")
    return theirs


def _short(value: object) -> str:
    text = str(value)
    return text[:16] if len(text) == 64 else text  # a SHA-256: its first 16 hex digits say enough


# on_result(item, result): each photo as its result comes back (the terminal's bar and per-worker counts)
ResultCallback = Callable[[BatchItem, PhotoResult], None]


class ClusterExecute:
    """The `execute` a run_batch gets for a cluster: one task per queued photo, results as they finish.
    io="shared": workers read and write the folders themselves; io="client": the bytes go through the client
    (core.batch.cluster_io), a few photos per worker in flight."""

    def __init__(self, client: Client, opts: BatchOptions, on_result: ResultCallback | None = None,
                 io: str = "shared") -> None:
        if io not in IO_MODES:
            raise ClusterError(f"--cluster-io must be one of {', '.join(IO_MODES)}, got {io!r}")
        self.client, self.opts, self.on_result, self.io = client, opts, on_result, io

    def __call__(self, todo: list[BatchItem], notify: Callable[[BatchItem], None], progress: Progress) -> None:
        from distributed import Event, as_completed

        from denoiser.core.batch.cluster_io import IN_FLIGHT_PER_WORKER, ClientIO
        from denoiser.core.batch.cluster_worker import model_digest, open_model

        run_id = uuid.uuid4().hex
        options = photo_options(self.opts, run_id)
        digest, event_name = model_digest(self.opts.model), f"denoiser-stop-{run_id}"
        try:
            workers = len(self.client.run(open_model, options, digest))
        except Exception as exc:
            raise ClusterError(f"a worker cannot open the model: {exc}") from None
        self._via = ClientIO(options) if self.io == "client" else None
        window = IN_FLIGHT_PER_WORKER * max(workers, 1) if self._via else len(todo)
        queue = list(enumerate(todo))
        futures: dict[Any, BatchItem] = {}
        stream = as_completed()
        done = 0

        def fill() -> None:
            nonlocal done
            while queue and sum(not f.done() for f in futures) < window:
                k, item = queue.pop(0)
                submitted = self._submit(k, item, options, digest, event_name, run_id)
                if isinstance(submitted, PhotoResult):  # not sent: held by another run, unreadable...
                    done += 1
                    self._apply(item, submitted, notify)
                else:
                    futures[submitted] = item
                    stream.add(submitted)

        try:
            fill()
            while queue or not stream.is_empty():
                progress.check_cancelled()
                if not stream.has_ready():
                    time.sleep(0.1)
                    fill()
                    continue
                for future in stream.next_batch(block=False):
                    done += 1
                    self._record(futures[future], future, notify)
                    progress.report(done / len(todo), f"{done}/{len(todo)} {futures[future].rel}")
                fill()
        except (Cancelled, KeyboardInterrupt):
            Event(event_name, client=self.client).set()  # running photos stop at their next tile
            running = {key for keys in self.client.processing().values() for key in keys}
            self.client.cancel([f for f in futures if not f.done() and f.key not in running])
            self._drain(futures, notify)
            raise
        finally:
            if self._via:
                self._via.release_all()

    def _submit(self, k: int, item: BatchItem, options: Any, digest: str, event_name: str, run_id: str) -> Any:
        from denoiser.core.batch.cluster_io import run_photo_bytes
        from denoiser.core.batch.cluster_worker import run_photo

        key = f"photo-{k}-{run_id}"
        if self._via is None:
            return self.client.submit(run_photo, task_of(item), options, digest, event_name, key=key, pure=False)
        args = self._via.arguments(item)
        if isinstance(args, PhotoResult):
            return args
        return self.client.submit(run_photo_bytes, *args, options, digest, event_name, key=key, pure=False)

    def _record(self, item: BatchItem, future: Any, notify: Callable[[BatchItem], None]) -> None:
        try:
            returned = future.result()
        except Exception as exc:  # a photo whose workers kept dying (KilledWorker), a lost connection...
            returned = PhotoResult(FAILED, failure_reason(exc, item.source))
        self._apply(item, self._via.finish(item, returned) if self._via else returned, notify)

    def _apply(self, item: BatchItem, result: PhotoResult, notify: Callable[[BatchItem], None]) -> None:
        apply_result(item, result)
        notify(item)
        if self.on_result:
            self.on_result(item, result)

    def _drain(self, futures: dict[Any, BatchItem], notify: Callable[[BatchItem], None]) -> None:
        """After a stop: let running tasks reach their next tile, and record the photos they finished."""
        from distributed import wait

        with contextlib.suppress(Exception):  # a stop must not fail over the wait
            wait([f for f in futures if not f.cancelled()], timeout=STOP_GRACE)
        for future, item in futures.items():
            if future.status == "finished" and item.status not in (DONE, FAILED, SKIPPED):
                returned = future.result()
                result = returned[0] if isinstance(returned, tuple) else returned
                if result.status != SKIPPED or result.reason != "cancelled":
                    self._record(item, future, notify)


def run_batch_on_cluster(spec: ClusterSpec, opts: BatchOptions, plan: BatchPlan, io: str = "shared",
                         on_ready: Callable[[dict[str, dict]], None] | None = None,
                         on_result: ResultCallback | None = None, **run_kwargs: Any) -> BatchResult:
    """run_batch on the cluster: connect, check every worker, make the plan's photos there (the CLI's
    `batch --cluster` and the window's batch both call this). ClusterError when it cannot start."""
    with connect(spec) as client:
        workers = check_workers(client, opts.model)
        if on_ready:
            on_ready(workers)
        return run_batch(opts, plan=plan, execute=ClusterExecute(client, opts, on_result, io), **run_kwargs)
