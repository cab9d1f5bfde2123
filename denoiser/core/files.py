"""File-system helpers shared by the modules that write or delete files (photos, model files, runs)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def process_umask() -> int:
    """The process umask without changing it (os.umask would, racing other threads that create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class UnsafePathError(ValueError):
    """A path that would be deleted or written lies outside the folder it must stay in."""


def inside(path: Path, folder: Path) -> Path:
    """`path` resolved (links followed), if it lies strictly inside `folder` (resolved too).

    Every delete runs through this first, so a name such as "..", an absolute path or a link that points
    elsewhere can never turn a clean-up into the removal of an unrelated folder."""
    root = Path(folder).resolve()
    target = Path(path).resolve()
    if target == root or root not in target.parents:
        raise UnsafePathError(f"{path}: refusing to touch it, it is not inside {root}")
    return target


def remove_tree_inside(path: Path, folder: Path) -> bool:
    """Delete the folder `path` (never a link) once it is proven to lie inside `folder`; False if absent."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePathError(f"{path}: is a link; refusing to delete through it")
    if not path.exists():
        return False
    shutil.rmtree(inside(path, folder))
    return True


def write_problem(folder: Path) -> str:
    """Why files cannot be written into `folder` (or the folder that would be created there), or "".

    Tried for real, with a temp file created and removed at once: permission bits say nothing about a
    read-only mount, and root passes every os.access check."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".denoiser-write-test.", suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return f"cannot write in {existing} ({exc.strerror or exc}); choose another output folder"
    return ""


class OutputFileError(ValueError):
    """A file a command was asked to write cannot be written there without losing something."""


def resolved(path: Path) -> Path:
    """`path` with links followed; UnsafePathError (naming it) for a link loop instead of RuntimeError/OSError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise UnsafePathError(f"{path}: is a symbolic link loop (or cannot be followed: {exc}); "
                              "remove or fix the link") from None


def check_output_file(path: Path, overwrite: bool, inputs: tuple[Path, ...] = (), suffixes: tuple[str, ...] = (),
                      flag: str = "--overwrite") -> Path:
    """Refuse (OutputFileError) a file a command would write when writing it could lose something: a folder,
    an input of the same run (a file given, or a file inside a folder given), an existing file without
    `overwrite`, a name without one of `suffixes`. The rule `denoise` applies to photos, for every other
    file a command writes (eval --json, pack --out)."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputFileError(f"{path}: the name must end in {' or '.join(suffixes)}")
    try:
        target = resolved(path)
    except UnsafePathError as exc:
        raise OutputFileError(str(exc)) from None
    if path.is_dir():
        raise OutputFileError(f"{path}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise OutputFileError(f"{path}: the folder {path.parent} does not exist")
    for source in inputs:
        src = resolved(source)
        if target == src or (src.is_dir() and src in target.parents and path.exists()):
            raise OutputFileError(f"{path}: is an input of this run ({source}); choose another output name")
    if path.exists() and not overwrite:
        raise OutputFileError(f"{path}: already exists; add {flag} to replace it")
    return path


# Every file is written as ".<name>.XXXXXXXX.<pid>.part" beside its target, then renamed over it. The pid
# tells a temp file whose writer was killed from one that a live writer is still filling.
TEMP_SUFFIX = ".part"
_TEMP_TAIL = re.compile(r"[a-z0-9_]{8}(?:\.(\d+))?\.(?:part|tmp)")  # mkstemp's part, the pid; ".tmp": 0.1.0


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def atomic_write(target: Path, writer: Callable[[BinaryIO], object], overwrite: bool = True) -> None:
    """Write `target` through `writer` into a temp file in the same folder, fsync, then rename it over the
    target: a reader never sees half a file, and a failure or a kill leaves the target as it was. With
    overwrite=False a file that appeared meanwhile is never replaced (FileExistsError). Temp files of this
    target left by a killed writer are removed first."""
    target = Path(target)
    remove_stale_parts([target], dead_writers_only=True)
    tmp = None
    try:
        # Ctrl-C/SIGTERM are held back while the temp file is created, so their handler can only run once
        # `tmp` names it, and the except below removes it
        blocked = _block_stop_signals()
        try:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=f".{os.getpid()}{TEMP_SUFFIX}",
                                       dir=target.parent)
        finally:
            _restore_signals(blocked)
        os.close(fd)  # reopen by name: tifffile wants a file object whose .name is a path
        with open(tmp, "w+b") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~process_umask())
        if overwrite:
            os.replace(tmp, target)
        else:
            _move_no_clobber(tmp, target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True) -> None:
    """atomic_write of bytes already in memory; with overwrite=False an existing file is refused
    (OutputFileError)."""
    try:
        atomic_write(Path(path), lambda f: f.write(data), overwrite)
    except FileExistsError:
        raise OutputFileError(f"{path}: already exists; add --overwrite to replace it") from None


def remove_stale_parts(targets: list[Path], dead_writers_only: bool = False) -> list[Path]:
    """Delete the temp files a killed run left for these targets (the pattern atomic_write uses) and return
    them. Only that exact pattern for the given targets is touched, so another job writing other files into
    the same folder (a parallel shard) is never disturbed; with dead_writers_only, a temp file whose writer
    process still runs is kept too."""
    removed = []
    by_folder: dict[Path, set[str]] = {}
    for target in targets:
        by_folder.setdefault(Path(target).parent, set()).add(_temp_prefix(Path(target)))
    for folder, prefixes in by_folder.items():
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = next((m for p in prefixes if name.startswith(p)
                          for m in [_TEMP_TAIL.fullmatch(name[len(p):])] if m), None)
            if match is None or (dead_writers_only and match[1] and _alive(int(match[1]))):
                continue
            path = folder / name
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): alive
        return True
    return True


def _block_stop_signals() -> object:
    """Block SIGINT and SIGTERM for this thread (POSIX); returns what _restore_signals needs."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _restore_signals(previous: object) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # type: ignore[arg-type]


def _move_no_clobber(tmp: str, target: Path) -> None:
    """Rename without replacing a file that appeared meanwhile (FileExistsError): a hard link fails on an
    existing name; a file system without hard links gets an exists check, then a rename."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MB blocks (model files are tens of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
