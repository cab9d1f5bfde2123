"""The ship rule's decision (benchmarks/ship_rule.py: decide) as a pure function of two tables."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from ship_rule import decide

REAL = ["Nam25 val", "RENOIR50 t3i val", "RENOIR50 dglr val"]
BASE = {"Nam25 val": 41.90, "RENOIR50 t3i val": 37.23, "RENOIR50 dglr val": 30.54,
        "CBSD68 σ25": 30.91, "McMaster σ50": 28.41}


def with_deltas(**deltas: float) -> dict[str, float]:
    names = {"nam": "Nam25 val", "t3i": "RENOIR50 t3i val", "dglr": "RENOIR50 dglr val",
             "cbsd": "CBSD68 σ25", "mcm": "McMaster σ50"}
    return {k: v + sum(d for n, d in deltas.items() if names[n] == k) for k, v in BASE.items()}


def test_real_progress_with_small_losses_ships():
    v = decide(BASE, with_deltas(nam=0.30, t3i=-0.04, dglr=0.0, cbsd=-0.05, mcm=0.02), REAL)
    assert v.ship
    assert v.real_gain == pytest.approx(0.26 / 3)
    assert v.worst_set == "CBSD68 σ25" and v.worst_delta == pytest.approx(-0.05)


def test_one_set_losing_more_than_the_tolerance_stops_a_large_gain():
    # v12's case: +0.5 dB on Nam25's validation half, but one Gaussian set lost 0.06 dB
    v = decide(BASE, with_deltas(nam=0.51, t3i=0.0, dglr=0.03, mcm=-0.06), REAL)
    assert not v.ship
    assert "McMaster σ50" in v.reason and "Nam25" not in v.reason


def test_a_real_set_losing_more_than_the_tolerance_stops_it_too():
    v = decide(BASE, with_deltas(nam=0.60, t3i=-0.08), REAL)
    assert not v.ship and "RENOIR50 t3i val" in v.reason


def test_no_loss_but_too_little_real_gain_does_not_ship():
    v = decide(BASE, with_deltas(nam=0.10, cbsd=0.50, mcm=0.50), REAL)  # real mean +0.033: Gaussian gains don't count
    assert not v.ship
    assert v.real_gain == pytest.approx(0.10 / 3)
    assert "< 0.05" in v.reason


def test_exactly_at_both_thresholds_ships():
    v = decide(BASE, with_deltas(nam=0.05, t3i=0.05, dglr=0.05, cbsd=-0.05), REAL)
    assert v.ship


def test_identical_tables_do_not_ship():
    assert not decide(BASE, dict(BASE), REAL).ship


def test_tables_over_different_sets_are_an_error():
    cand = dict(BASE)
    del cand["McMaster σ50"]
    with pytest.raises(ValueError, match="McMaster"):
        decide(BASE, cand, REAL)
    with pytest.raises(ValueError, match="real sets"):
        decide(BASE, dict(BASE), ["Nam25 test"])
