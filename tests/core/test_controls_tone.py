"""Luma/chroma strengths and detail recovery (core.inference.controls) move the output the expected way."""
from __future__ import annotations

import numpy as np
import pytest

from denoiser.core.inference.controls import (
    AUTO,
    Component,
    Controls,
    apply_detail,
    controlled,
    parse_component,
    parse_detail,
)

BT601 = np.array([0.299, 0.587, 0.114], np.float32)


def _y(img: np.ndarray) -> np.ndarray:
    return img @ BT601


def _cbcr(img: np.ndarray) -> np.ndarray:
    return np.stack([img[..., 2] - _y(img), img[..., 0] - _y(img)], -1)


@pytest.fixture
def pair(rng):
    """A mid-tone edge photo with colour noise, and a 'denoised' version (the clean photo)."""
    clean = np.full((48, 48, 3), [0.35, 0.45, 0.5], np.float32)
    clean[:, 24:] = [0.6, 0.5, 0.4]
    noisy = np.clip(clean + rng.normal(0, 0.06, clean.shape), 0, 1).astype(np.float32)
    return noisy, clean


def _never(img, sigma):
    raise AssertionError("no extra run expected")


@pytest.mark.parametrize("text,expected", [("auto", AUTO), ("12", Component("sigma", 12.0)),
                                           ("0.5x", Component("scale", 0.5)), ("0X", Component("scale", 0.0))])
def test_parse_component(text, expected):
    assert parse_component(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "300", "-1", "1.5x", "x"])
def test_parse_component_refuses(text):
    with pytest.raises(ValueError, match="noise level|fraction|strength"):
        parse_component(text)


def test_parse_detail():
    assert parse_detail("40%") == pytest.approx(0.4)
    for bad in ("101", "-3", "lots"):
        with pytest.raises(ValueError, match="detail"):
            parse_detail(bad)


def test_plain_controls_return_the_run_itself(pair):
    noisy, main = pair
    assert controlled(noisy, main, 25, Controls(), _never) is main


def test_chroma_only_leaves_luma_untouched(pair):
    noisy, main = pair
    out = controlled(noisy, main, 25, Controls(luma=Component("scale", 0.0)), _never)
    assert np.abs(_y(out) - _y(noisy)).max() < 1e-5
    # the colour noise is gone: chroma is that of the denoised photo
    assert np.abs(_cbcr(out) - _cbcr(main)).max() < 1e-5
    assert np.abs(_cbcr(noisy) - _cbcr(main)).max() > 0.05


def test_luma_only_leaves_chroma_untouched(pair):
    noisy, main = pair
    out = controlled(noisy, main, 25, Controls(chroma=Component("scale", 0.0)), _never)
    assert np.abs(_cbcr(out) - _cbcr(noisy)).max() < 1e-5
    assert np.abs(_y(out) - _y(main)).max() < 1e-5


def test_half_scale_is_halfway(pair):
    noisy, main = pair
    half = Component("scale", 0.5)
    out = controlled(noisy, main, 25, Controls(luma=half, chroma=half), _never)
    np.testing.assert_allclose(out, (noisy + main) / 2, atol=1e-5)


def test_sigma_component_runs_the_model_at_that_level(pair):
    noisy, main = pair
    calls = []
    other = np.full_like(main, 0.5)

    def run(img, sigma):
        calls.append(sigma)
        return other

    out = controlled(noisy, main, 25, Controls(luma=Component("sigma", 40.0)), run)
    assert calls == [40.0]
    assert np.abs(_y(out) - _y(other)).max() < 1e-5  # luma from the sigma-40 run
    assert np.abs(_cbcr(out) - _cbcr(main)).max() < 1e-5  # chroma from the main run


def test_detail_ends(pair):
    noisy, main = pair
    np.testing.assert_array_equal(controlled(noisy, main, 25, Controls(detail=1.0), _never), noisy)
    np.testing.assert_array_equal(apply_detail(noisy, main, 0.0, 25), main)


def test_detail_returns_more_on_edges_than_on_flat_areas(pair):
    noisy, main = pair
    out = apply_detail(noisy, main, 0.5, 25)
    returned = np.abs(out - main).mean(-1) / np.maximum(np.abs(noisy - main).mean(-1), 1e-6)
    edge, flat = returned[:, 22:26].mean(), returned[:, 2:12].mean()
    assert edge > 2 * flat and flat < 0.2


def test_more_detail_is_closer_to_the_input(pair):
    noisy, main = pair
    dist = [np.abs(apply_detail(noisy, main, d, 25) - noisy).mean() for d in (0.0, 0.3, 0.6, 0.9)]
    assert dist == sorted(dist, reverse=True) and dist[0] > dist[-1] * 2


def test_grey_photo_uses_luma_only(rng):
    noisy = rng.uniform(0.3, 0.7, (16, 16, 1)).astype(np.float32)
    main = np.full_like(noisy, 0.5)
    out = controlled(noisy, main, 25, Controls(luma=Component("scale", 0.25), chroma=Component("scale", 0.0)),
                     _never)
    np.testing.assert_allclose(out, noisy + 0.25 * (main - noisy), atol=1e-6)
