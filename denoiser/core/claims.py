"""Claims: a run takes a photo's output before working on it, so two runs into one folder never redo or
misreport each other's photos (two local batches, or a local batch beside a cluster, or a rescheduled task).

A claim is a hidden file beside the output, ".<output name>.claim", held open under an exclusive advisory
lock (fcntl.flock) for as long as the photo is being made. The kernel drops the lock when its process dies,
however it dies, so a claim left by a killed run is simply taken by the next one: no timeout to tune and no
process id to trust. The file says who holds it (host, pid, run id) so the other run can say so.

Where flock is missing (Windows), the claim is an exclusive create; one older than STALE_AFTER seconds
whose holder is gone is taken over. Shared folders: flock works on local file systems and NFSv4 (Linux maps
it to NFS byte-range locks); on other network file systems two machines may both take a photo, and the
atomic save still leaves one complete file.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CLAIM_SUFFIX = ".claim"
STALE_AFTER = 6 * 3600.0  # without flock only: a claim this old is a dead run's


def claim_path(output: Path) -> Path:
    return output.with_name(f".{output.name}{CLAIM_SUFFIX}")


@dataclass
class Claim:
    """A held claim; release() (or leaving the `with`) deletes the file and drops the lock."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if _same_inode(self.path, self.fd):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Held(Exception):
    """Another live run holds this output; `holder` says who, for the report."""

    def __init__(self, output: Path, holder: str) -> None:
        super().__init__(f"being made by another run ({holder})" if holder else "being made by another run")
        self.output, self.holder = output, holder


def take(output: Path, run_id: str = "") -> Claim:
    """Claim `output` for this process, or raise Held. The output's folder must exist."""
    path = claim_path(Path(output))
    if fcntl is None:  # pragma: no cover - Windows
        return _take_exclusive(path, run_id)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Held(output, holder) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_inode(path, fd):  # not a file its last holder unlinked while we opened it
            _write_holder(fd, run_id)
            return Claim(path, fd)
        os.close(fd)


def _take_exclusive(path: Path, run_id: str) -> Claim:  # pragma: no cover - Windows
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
            except OSError:
                continue
            if age < STALE_AFTER:
                raise Held(path, _read_holder(path)) from None
            path.unlink(missing_ok=True)
            continue
        _write_holder(fd, run_id)
        return Claim(path, fd)
    raise Held(path, _read_holder(path))


def _same_inode(path: Path, fd: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _write_holder(fd: int, run_id: str) -> None:
    data = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "run": run_id,
                       "since": round(time.time(), 1)}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode())
        return f"pid {int(info['pid'])} on {str(info['host'])[:64]}"
    except (ValueError, KeyError, TypeError):
        return ""


def _holder(fd: int) -> str:
    try:
        return _describe(os.pread(fd, 4096, 0))
    except OSError:
        return ""


def _read_holder(path: Path) -> str:  # pragma: no cover - Windows
    try:
        return _describe(path.read_bytes()[:4096])
    except OSError:
        return ""


def held_by_other(output: Path) -> bool:
    """True while another live run holds `output` (checked by taking and at once releasing the claim)."""
    try:
        take(output).release()
    except Held:
        return True
    except OSError:
        return False
    return False
