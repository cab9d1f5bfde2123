"""`batch --cluster-io client`: photos travel through the client, for workers that share no file system with it.

The client claims each output on its own disk (core.claims, as a local run does), reads the input's bytes and
sends them with the task; the worker makes the photo in a private temp folder with the same pipeline
(core.pipeline.process_photo, no claim: the client holds it) and returns the output's bytes, which the client
writes atomically beside its claim. Only a few photos are in flight at a time (IN_FLIGHT_PER_WORKER each), so
the client never holds a whole folder in memory. A killed worker's task is resent by Dask with the same bytes;
the client writes each output once.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from denoiser.core.batch.plan import BatchItem
from denoiser.core.claims import Claim, Held, take
from denoiser.core.files import atomic_write_bytes
from denoiser.core.pipeline import (
    DONE,
    FAILED,
    SKIPPED,
    PhotoOptions,
    PhotoResult,
    PhotoTask,
    failure_reason,
    make_folder,
)

IN_FLIGHT_PER_WORKER = 2


def run_photo_bytes(name: str, data: bytes, output_name: str, options: PhotoOptions, digest: str,
                    cancel_event: str = "") -> tuple[PhotoResult, bytes | None]:
    """On a worker: make the photo from `data` (the input file's bytes) and return its output's bytes."""
    from denoiser.core.batch.cluster_worker import run_photo

    folder = Path(tempfile.mkdtemp(prefix="denoiser-task-"))
    try:
        source, output = folder / "in" / name, folder / "out" / output_name
        source.parent.mkdir()
        source.write_bytes(data)
        local = dataclasses.replace(options, claim=False, overwrite=False)
        result = run_photo(PhotoTask(source, output, name), local, digest, cancel_event)
        if result.status != DONE:
            result.reason = result.reason.replace(str(source), name).replace(str(output), output_name)
            return result, None
        return result, output.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ClientIO:
    """The client's side: claim, read and send; then write what comes back."""

    def __init__(self, options: PhotoOptions) -> None:
        self.options = options
        self.claims: dict[int, Claim] = {}

    def arguments(self, item: BatchItem) -> tuple[Any, ...] | PhotoResult:
        """The task's arguments after claiming the output, or the photo's result when it cannot be sent."""
        assert item.output is not None
        try:
            make_folder(item.output.parent)
            claim = take(item.output, self.options.run_id)
        except Held as held:
            return PhotoResult(SKIPPED, str(held))
        except Exception as exc:
            return PhotoResult(FAILED, failure_reason(exc, item.source))
        if item.output.exists() and not self.options.overwrite:
            claim.release()
            return PhotoResult(SKIPPED, "output exists")
        try:
            data = item.source.read_bytes()
        except OSError as exc:
            claim.release()
            return PhotoResult(FAILED, failure_reason(exc, item.source))
        self.claims[id(item)] = claim
        return item.source.name, data, item.output.name

    def finish(self, item: BatchItem, returned: tuple[PhotoResult, bytes | None] | PhotoResult) -> PhotoResult:
        """Write the returned bytes as the output (atomically), release the claim; the photo's result."""
        result, data = returned if isinstance(returned, tuple) else (returned, None)
        try:
            if result.status == DONE and data is not None:
                assert item.output is not None
                atomic_write_bytes(item.output, data, overwrite=self.options.overwrite)
                result.output = item.output
        except Exception as exc:
            result = dataclasses.replace(result, status=FAILED, reason=failure_reason(exc, item.output or item.source))
        finally:
            self.release(item)
        return result

    def release(self, item: BatchItem) -> None:
        claim = self.claims.pop(id(item), None)
        if claim is not None:
            claim.release()

    def release_all(self) -> None:
        for claim in self.claims.values():
            claim.release()
        self.claims.clear()
