"""Worker plumbing: a Job calls a plain function on a pool thread and reports through signals."""
from __future__ import annotations

import threading

from denoiser.gui.workers import Job, JobRunner


def steps(n: int, gate: threading.Event, progress) -> int:
    """A stand-in for the tiled core loop: reports and checks for cancel between 'tiles'."""
    done = 0
    for i in range(n):
        progress.check_cancelled()
        gate.wait(5)
        done += 1
        progress.report((i + 1) / n, f"tile {i + 1}/{n}")
    return done


def test_result_and_progress_arrive_on_the_gui_thread(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()
    gate.set()
    job = Job(steps, 4, gate)
    seen: list[tuple[float, str, bool]] = []
    main = threading.get_ident()
    job.signals.progress.connect(lambda f, m: seen.append((f, m, threading.get_ident() == main)))
    with qtbot.waitSignal(job.signals.result, timeout=10_000) as blocker:
        runner.start(job)
    assert blocker.args == [4]
    qtbot.waitUntil(lambda: len(seen) == 4)
    assert [s[0] for s in seen] == [0.25, 0.5, 0.75, 1.0] and all(s[2] for s in seen)


def test_cancel_stops_at_the_next_check(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()  # the first 'tile' blocks until we cancel
    job = Job(steps, 100, gate)
    results: list[int] = []
    job.signals.result.connect(results.append)
    with qtbot.waitSignal(job.signals.cancelled, timeout=10_000):
        runner.start(job)
        job.cancel()
        gate.set()
    assert results == [] and job.done


def test_errors_are_delivered_not_swallowed(qtbot) -> None:
    def broken(progress) -> None:
        raise ValueError("photo.jpg: not a JPEG file")

    job = Job(broken)
    with qtbot.waitSignal(job.signals.error, timeout=10_000) as blocker:
        JobRunner().start(job)
    assert isinstance(blocker.args[0], ValueError) and "photo.jpg" in str(blocker.args[0])
