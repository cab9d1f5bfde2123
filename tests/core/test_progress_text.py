"""The one way progress lines say how long is left (core.progress)."""
from __future__ import annotations

from denoiser.core.progress import format_duration, format_eta, time_left


def test_time_left_is_linear_and_unknown_at_first() -> None:
    assert time_left(0.2, 0.5) is None and time_left(10.0, 0.01) is None  # too early to tell
    assert time_left(10.0, 0.5) == 10.0 and time_left(60.0, 0.25) == 180.0
    assert time_left(10.0, 1.0) == 0.0


def test_words_and_clock() -> None:
    assert format_eta(0.2, 0.5) == "estimating time left…"
    assert format_eta(10.0, 0.5) == "about 10 s left" and format_eta(60.0, 0.25) == "about 3 min left"
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05" and format_duration(0.4) == "0:00"
