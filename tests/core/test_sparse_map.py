"""Auto's sparse noise map (core.noise.sparse_map) against the map read at every pixel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from denoiser.core.noise import sparse_map as sm
from denoiser.core.noise.learned import NoiseMapNet, estimate_map, predict_map


def local_std(tile: torch.Tensor) -> np.ndarray:
    """A stand-in estimator: the local std of the tile's fine residual (0..255), at half resolution."""
    grey = tile.mean(dim=1, keepdim=True)
    resid = grey - F.avg_pool2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    power = F.avg_pool2d(F.pad(resid ** 2, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    return (F.avg_pool2d(power, 2, ceil_mode=True).sqrt() * 255 * 1.5)[0, 0].numpy()


def counting(run):
    """`run` that also counts the pixels it was given."""
    seen = []

    def wrapped(tile: torch.Tensor) -> np.ndarray:
        seen.append(tile.shape[2] * tile.shape[3])
        return run(tile)
    return wrapped, seen


def test_sparse_map_follows_noise_that_varies_smoothly_across_the_photo():
    rng = np.random.default_rng(0)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    clean = np.repeat((0.3 + 0.4 * xx / w)[..., None], 3, axis=2)
    sigma = (4 + 16 * yy / h) / 255  # std 4 at the top to 20 at the bottom
    img = (clean + rng.standard_normal((h, w, 1)).astype(np.float32) * sigma[..., None]).astype(np.float32)
    full = predict_map(None, img, run=local_std)  # type: ignore[arg-type]  # run replaces the network
    run, seen = counting(local_std)
    sparse = sm.sparse_map(img, run, block=96, fraction=1 / 4, rim=8)
    assert sparse.shape == full.shape == (240, 320) and sparse.dtype == np.float32
    assert sum(seen) < 0.5 * h * w  # the estimator read a part of the photo only
    assert np.abs(sparse - full).mean() < 0.1 * full.mean()
    rows = sparse.mean(axis=1)
    assert rows[-10:].mean() > 2.5 * rows[:10].mean()  # the gradient of the noise survives the interpolation


def brightness_run(tile: torch.Tensor) -> np.ndarray:
    """A stand-in estimator whose map is a function of brightness: 5 in the dark to 25 in white."""
    grey = F.avg_pool2d(tile.mean(dim=1, keepdim=True), 2, ceil_mode=True)[0, 0].numpy()
    return 5 + 20 * grey


def test_a_brightness_the_grid_blocks_missed_gets_a_block_of_its_own(monkeypatch):
    img = np.full((512, 512, 3), 0.1, np.float32)
    img[200:312, 200:312] = 0.9  # a bright square in the middle, between the grid's blocks
    sparse = sm.sparse_map(img, brightness_run, block=64, fraction=1 / 16, rim=8)
    square = sparse[110:146, 110:146]
    assert np.abs(square - (5 + 20 * 0.9)).max() < 1.0
    assert np.abs(sparse[:40, :40] - (5 + 20 * 0.1)).max() < 1.0
    monkeypatch.setattr(sm, "MAX_COVER", 0)  # without the extra block the square reads as the dark
    missed = sm.sparse_map(img, brightness_run, block=64, fraction=1 / 16, rim=8)[110:146, 110:146]
    assert np.abs(missed - (5 + 20 * 0.9)).mean() > 5


def test_a_small_photo_is_read_at_every_pixel_and_a_big_one_sparsely():
    img = np.random.default_rng(1).random((600, 900, 3), dtype=np.float32)
    run, seen = counting(local_std)
    whole = estimate_map(None, img, run=run)  # type: ignore[arg-type]
    assert sum(seen) >= 600 * 900  # every pixel (and the tiles' overlap)
    np.testing.assert_array_equal(whole, predict_map(None, img, run=local_std))  # type: ignore[arg-type]
    seen.clear()
    sparse = estimate_map(None, img, run=run, whole_up_to_mp=0.5)  # type: ignore[arg-type]
    assert sparse.shape == whole.shape == (300, 450) and sparse.dtype == np.float32
    assert sum(seen) < 0.5 * 600 * 900


@pytest.mark.parametrize("shape", [(1, 301), (37, 1), (257, 131), (18, 999, 1), (5, 7)])
def test_odd_and_thin_photos_get_a_whole_map(shape):
    torch.manual_seed(0)
    net = NoiseMapNet().eval()
    img = np.random.default_rng(2).random(shape, dtype=np.float32)
    out = estimate_map(net, img, whole_up_to_mp=0)
    assert out.shape == ((shape[0] + 1) // 2, (shape[1] + 1) // 2) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()


def test_bad_settings_are_refused():
    img = np.zeros((64, 64, 3), np.float32)
    for bad in ({"block": 30}, {"fraction": 0.0}, {"bins": 1}, {"rim": 3}):
        with pytest.raises(ValueError, match="sparse-map settings"):
            sm.sparse_map(img, brightness_run, **bad)


def test_bins_share_each_pixel_between_its_two_brightness_bins():
    from denoiser.core.noise.sparse_map import Bins

    guide = np.array([[0.25, 1.0, 2.75, 3.0]], np.float32)  # bins 0..3: the top value sits wholly in the last bin
    binned = Bins.of(guide, 4)
    sums, counts = binned.histogram(np.array([[2.0, 4.0, 8.0, 16.0]]))
    np.testing.assert_allclose(counts, [0.75, 1.25, 0.25, 1.75])
    np.testing.assert_allclose(sums, [1.5, 0.5 + 4.0, 2.0, 6.0 + 16.0])
    part_sums, part_counts = binned.part(slice(0, 1), slice(1, 3)).histogram(np.array([[4.0, 8.0]]))
    np.testing.assert_allclose(part_counts, [0.0, 1.0, 0.25, 0.75])
    np.testing.assert_allclose(part_sums, [0.0, 4.0, 2.0, 6.0])
    with pytest.raises(ValueError, match="bin count"):
        Bins.of(guide, 300)
