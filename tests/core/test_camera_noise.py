"""Camera-pipeline noise, level maps, the learned noise-map estimator and Auto's scale."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from denoiser.core.noise import NoiseConfig, local_std_map, synthesize
from denoiser.core.noise.camera import CameraParams, camera_noise, sample_params, simulate


def _plain_camera(**kw: object) -> CameraParams:
    """A fixed camera without in-camera steps, so the statistics come from the sensor and demosaic alone."""
    p = sample_params(np.random.default_rng(3))
    return replace(p, chroma_nr=0.0, sharpen=0.0, jpeg=0, tone=False, demosaic="bilinear", **kw)


def _to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def test_pipeline_noise_variance_rises_with_signal_in_linear_light():
    p = _plain_camera(shot=4e-3, read=1e-6)
    variances = []
    for grey in (0.15, 0.35, 0.6):
        clean = np.full((96, 96, 3), grey, np.float32)
        noisy = simulate(clean, p, np.random.default_rng(1))
        variances.append(float(np.var(_to_linear(noisy)[8:-8, 8:-8] - _to_linear(clean)[8:-8, 8:-8])))
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 3 * variances[0]


def test_pipeline_noise_is_spatially_correlated_after_demosaicing():
    clean = np.full((128, 128, 3), 0.4, np.float32)
    noise = simulate(clean, _plain_camera(shot=3e-3, read=1e-5), np.random.default_rng(2)) - clean
    g = noise[8:-8, 8:-8, 1]
    lag1 = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
    white = np.random.default_rng(0).normal(size=g.shape)
    white_lag1 = np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]
    assert lag1 > 0.2
    assert abs(white_lag1) < 0.05


def test_noise_free_camera_keeps_the_clean_signal_exactly():
    rng = np.random.default_rng(4)
    clean = rng.random((64, 64, 3)).astype(np.float32)
    out = simulate(clean, _plain_camera(shot=0.0, read=0.0), rng)
    assert np.abs(out - clean).max() < 1e-5


def test_camera_noise_batch_differs_per_image_and_is_seeded():
    clean = torch.full((3, 3, 64, 64), 0.5)
    a = camera_noise(clean, torch.Generator().manual_seed(5))
    b = camera_noise(clean, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    stds = [(a[i] - clean[i]).std().item() for i in range(3)]
    assert len({round(s, 4) for s in stds}) == 3


def test_local_std_map_reads_white_noise_level():
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((1, 3, 128, 128), generator=gen) * (20 / 255)
    m = local_std_map(noise)
    assert m.shape == (1, 1, 64, 64)
    assert abs(float(m.mean()) - 20) < 1.5
    assert float(m.std()) < 3


def test_level_map_follows_brightness_for_camera_noise_and_is_constant_for_gaussian():
    ramp = torch.linspace(0.05, 0.95, 128).view(1, 1, 1, -1).expand(4, 3, 128, 128).contiguous()
    cam = NoiseConfig(p_gaussian=0, p_poisson=0, p_correlated=0, p_camera=1, level_map=True)
    _, level = synthesize(ramp, cam, torch.Generator().manual_seed(1))
    assert level.shape == (4, 1, 64, 64)
    assert level.std(dim=(2, 3)).min() > 0.5  # varies across the photo
    gauss = NoiseConfig(p_gaussian=1, p_poisson=0, p_correlated=0, level_map=True)
    noisy, level = synthesize(ramp, gauss, torch.Generator().manual_seed(1))
    assert torch.allclose(level.std(dim=(2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(level[:, 0, 0, 0], (noisy - ramp).flatten(1).std(dim=1) * 255, atol=1e-3)


def test_colour_augment_permutes_and_scales_saturation_about_grey():
    from denoiser.core.training.trainer import colour_augment

    gen = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand((6, 3, 16, 16), generator=gen)
    y = colour_augment(x, 1.0, gen)
    assert not torch.equal(x, y)
    assert torch.allclose(x.mean(dim=1), y.mean(dim=1), atol=0.02)  # grey kept (no clipping in this range)
    assert torch.equal(colour_augment(x, 0.0, gen), x)


def test_estimator_file_round_trip_and_shape_check(tmp_path):
    from safetensors.torch import load_file, save_file

    from denoiser.core.noise.learned import NoiseMapNet, load_estimator, save_estimator

    net = NoiseMapNet()
    path = tmp_path / "e.safetensors"
    save_estimator(net, path, {"steps": 0})
    back = load_estimator(path)
    x = torch.rand(1, 3, 40, 36)
    assert torch.equal(net(x), back(x))
    assert back(x).shape == (1, 1, 20, 18)
    state = load_file(str(path))
    state["head.weight"] = torch.zeros(1, 5, 1, 1)
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(state, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="shape"):
        load_estimator(tmp_path / "bad.safetensors")
    save_file(state, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a noise-map estimator"):
        load_estimator(tmp_path / "foreign.safetensors")


def test_predict_map_tiles_match_one_pass():
    from denoiser.core.noise.learned import NoiseMapNet, predict_map

    torch.manual_seed(0)
    net = NoiseMapNet().eval()
    img = np.random.default_rng(0).random((301, 277, 3)).astype(np.float32)
    whole = predict_map(net, img, tile=4096)
    tiled = predict_map(net, img, tile=320)
    assert whole.shape == (151, 139)
    # the network's receptive field (65 px) fits inside the 96 px margin: the tiles join without seams
    assert np.abs(whole - tiled).max() < 1e-3 * max(1.0, float(whole.max()))


def _heavy_camera_photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    clean = np.stack([0.25 + 0.5 * xx, 0.3 + 0.2 * np.sin(5 * yy), 0.55 - 0.3 * yy], axis=2).astype(np.float32)
    p = replace(_plain_camera(shot=1.2e-2, read=2e-4), demosaic="ea", chroma_nr=1.0, jpeg=90)
    return clean, simulate(clean, p, np.random.default_rng(seed))


def test_shipped_estimator_reads_flat_camera_noise_within_tolerance():
    from denoiser.core.noise.learned import predict_map, shipped_estimator

    net = shipped_estimator()
    assert net is not None, "resources/models/estimator.safetensors is part of the app"
    clean = np.full((128, 128, 3), 0.45, np.float32)
    p = replace(_plain_camera(shot=4e-3, read=5e-5), demosaic="ea")
    true_std = []
    est = []
    for seed in range(3):
        noisy = simulate(clean, p, np.random.default_rng(seed))
        true_std.append(float((noisy - clean).std() * 255))
        est.append(float(np.median(predict_map(net, noisy)[8:-8, 8:-8])))
    ratio = np.mean(est) / np.mean(true_std)
    assert 0.75 < ratio < 1.5, (est, true_std)


def test_auto_on_heavy_camera_noise_is_well_above_the_white_noise_estimate(tiny_model_file):
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.noise import estimate_sigma

    d = Denoiser.from_file(tiny_model_file, device="cpu")
    clean, noisy = _heavy_camera_photo()
    true_std = float((noisy - clean).std() * 255)
    auto = float(d.auto_strength(noisy))
    white = estimate_sigma(noisy)
    assert auto > 1.5 * white
    assert auto > 0.6 * true_std
