"""The joint raw model: synthetic raw data, the network, its training task and tiled inference on any Bayer phase."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from denoiser.core.inference.raw_model import RED_SITE, denoise_demosaic, load_raw_model
from denoiser.core.model.file import ModelCard, ModelFileError, save_model
from denoiser.core.model.network import RAW_ARCH, ModelConfig, build_model
from denoiser.core.model.raw_network import RawUNet, mhc_demosaic
from denoiser.core.noise.camera import mosaic
from denoiser.core.noise.raw_synthesis import pack, site_gains, synthesize_raw
from denoiser.core.noise.sensor import SensorNoise
from denoiser.core.training.raw_task import RawTrainer
from denoiser.core.training.trainer import TrainConfig
from tests.conftest import TINY

RAW_TINY = ModelConfig(arch=RAW_ARCH, in_channels=4, **TINY)
NOISE = SensorNoise((2e-3, 1e-3, 1e-3, 3e-3), (1e-4, 5e-5, 5e-5, 2e-4), "given")
WB = (2.1, 1.0, 1.6)


def random_raw_model(seed: int = 0) -> RawUNet:
    torch.manual_seed(seed)
    model = build_model(RAW_TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    assert isinstance(model, RawUNet)
    return model.eval()


def scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random scene in linear camera RGB, with a noisy mosaic of it (RGGB)."""
    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3) * 0.5 + 0.1
    cfa = mosaic(img)
    return (cfa + 0.02 * rng.standard_normal(cfa.shape)).astype(np.float32)


def test_synthetic_noise_has_the_variance_it_claims(rng):
    flat = np.full((4, 128, 128, 3), 0.6, np.float32)  # every photosite of a plane shares one clean value
    batch = synthesize_raw(flat, rng)
    gains = torch.from_numpy(np.stack([site_gains(w) for w in batch.wb])).view(4, 4, 1, 1)
    residual = batch.noisy / gains - batch.clean
    for i in range(4):
        for k in range(4):
            signal = float(batch.clean[i, k].mean())
            claimed = batch.shot[i] * signal + batch.read[i]
            measured = float(residual[i, k].var())
            assert measured == pytest.approx(claimed, rel=0.1), (i, k)
            # the std map the network gets is that of the same model (signal: the plane's local mean)
            assert float(batch.std[i, k].mean() / gains[i, k, 0, 0]) == pytest.approx(np.sqrt(claimed), rel=0.1)


def test_synthetic_target_is_the_white_balanced_clean_scene(rng):
    grey = np.full((2, 32, 32, 3), 0.5, np.float32)
    batch = synthesize_raw(grey, rng)
    # a neutral grey stays neutral once white-balanced (rows of the colour matrix sum to 1)
    t = batch.target.mean(dim=(2, 3))
    assert torch.allclose(t, t[:, 1:2].expand_as(t), rtol=1e-4)


def test_mhc_demosaic_reproduces_flat_colours_and_beats_nearest_sampling(rng):
    img = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (0, 0), 4)
    planes = pack(torch.from_numpy(mosaic(img))[None, None])
    out = mhc_demosaic(planes)[0].permute(1, 2, 0).numpy()
    err = np.abs(out - img)[4:-4, 4:-4].mean()
    nearest = np.abs(np.repeat(np.repeat(img[::2, ::2], 2, 0), 2, 1) - img)[4:-4, 4:-4].mean()
    assert err < nearest / 3
    flat = mhc_demosaic(pack(torch.from_numpy(mosaic(np.full((16, 16, 3), [0.2, 0.5, 0.7], np.float32)))[None, None]))
    assert torch.allclose(flat, torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand_as(flat), atol=1e-6)


def test_untrained_model_returns_camera_rgb_not_white_balanced():
    model = build_model(RAW_TINY).eval()  # the tail starts at zero: the model is the linear demosaic
    colour = np.array([0.1, 0.3, 0.2], np.float32)
    cfa = mosaic(np.broadcast_to(colour, (32, 40, 3)).copy())
    out = denoise_demosaic(model, cfa, "RGGB", WB, NOISE)
    assert out.shape == (32, 40, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(-1, 3), np.broadcast_to(colour, (32 * 40, 3)), atol=1e-5)


def test_tiled_equals_untiled(rng):
    model = random_raw_model()
    cfa = scene(rng, 400, 352)
    whole = denoise_demosaic(model, cfa, "RGGB", WB, NOISE, tile=4096)
    tiled = denoise_demosaic(model, cfa, "RGGB", WB, NOISE, tile=256, overlap=112)
    assert np.abs(whole - tiled).max() < 1e-4
    assert np.abs(whole).mean() > 0.05  # not a degenerate output


def test_all_four_bayer_phases_give_the_same_result(rng):
    model = random_raw_model(1)
    cfa = scene(rng, 128, 128)
    ref = denoise_demosaic(model, cfa, "RGGB", WB, NOISE)
    flips = {(0, 0): "RGGB", (0, 1): "GRBG", (1, 0): "GBRG", (1, 1): "BGGR"}
    assert {flips[site]: site for site in flips} == RED_SITE
    for (dy, dx), pattern in flips.items():
        # SensorNoise holds (a, b) in pattern order: the shifted mosaic's sites are the original's, permuted
        order = [((sy + dy) % 2) * 2 + (sx + dx) % 2 for sy in (0, 1) for sx in (0, 1)]
        noise = SensorNoise(tuple(NOISE.a[i] for i in order), tuple(NOISE.b[i] for i in order), "given")
        out = denoise_demosaic(model, cfa[dy:, dx:], pattern, WB, noise)
        assert out.shape == (128 - dy, 128 - dx, 3)
        inner = np.s_[40:-40, 40:-40]  # away from the borders, where padding differs
        np.testing.assert_allclose(out[inner], ref[dy:, dx:][inner], atol=1e-5, err_msg=pattern)


def test_wrong_white_balance_changes_the_result(rng):
    """The gains reach the right sites: swapping R and B gains gives another result."""
    model = random_raw_model(2)
    cfa = scene(rng, 64, 64)
    a = denoise_demosaic(model, cfa, "RGGB", WB, NOISE)
    b = denoise_demosaic(model, cfa, "RGGB", (WB[2], 1.0, WB[0]), NOISE)
    assert np.abs(a - b).mean() > 1e-3


def test_bad_inputs_are_refused(rng):
    model = random_raw_model()
    cfa = scene(rng, 32, 32)
    with pytest.raises(ValueError, match="CFA pattern"):
        denoise_demosaic(model, cfa, "RGBG", WB, NOISE)
    with pytest.raises(ValueError, match="white balance"):
        denoise_demosaic(model, cfa, "RGGB", (0.0, 1.0, 1.0), NOISE)
    with pytest.raises(ValueError, match="smaller"):
        denoise_demosaic(model, cfa[:2, :2], "RGGB", WB, NOISE)


def test_raw_model_file_round_trip_and_kind_checks(tmp_path):
    model = random_raw_model()
    path = tmp_path / "raw.safetensors"
    save_model(path, model, ModelCard(name="raw", config=RAW_TINY), half=False)
    loaded = load_raw_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    rgb_path = tmp_path / "rgb.safetensors"
    save_model(rgb_path, build_model(ModelConfig(**TINY)), ModelCard(name="rgb", config=ModelConfig(**TINY)))
    with pytest.raises(ModelFileError, match="not a raw model"):
        load_raw_model(rgb_path)
    with pytest.raises(ValueError, match="in_channels"):
        ModelConfig(arch=RAW_ARCH, in_channels=3, **TINY)


@pytest.fixture
def photo_folder(tmp_path, rng):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        img = cv2.GaussianBlur((rng.random((96, 96, 3)) * 255).astype(np.uint8), (7, 7), 2)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return folder


def test_raw_training_steps_reduce_the_loss_on_a_fixed_batch(photo_folder, tmp_path, rng):
    cfg = TrainConfig(model=RAW_TINY, batch_size=4, patch=32, minutes=0, max_steps=80, threads=1, lr=2e-3,
                      warmup_steps=5, val_fraction=0, pool_size=3, ema_decay=0.9)
    trainer = RawTrainer(cfg, [photo_folder], tmp_path / "run", device="cpu")
    fixed = cv2.GaussianBlur(rng.random((4 * 32, 32, 3)).astype(np.float32), (0, 0), 4).reshape(4, 32, 32, 3)
    fixed = fixed * 0.6 + 0.2
    trainer.pool.fill()
    trainer.pool.batch = lambda n, patch: fixed  # type: ignore[method-assign]

    def loss() -> float:  # the same noisy raws (cameras, levels, noise) every time
        batch = torch.from_numpy(fixed).permute(0, 3, 1, 2)
        with torch.no_grad():
            return float(np.mean([trainer.loss_fn(trainer.model, batch, torch.Generator().manual_seed(s))
                                  for s in range(4)]))

    before = loss()
    for _ in range(80):
        trainer.train_step()
    assert loss() < 0.9 * before


SHIPPED_RAW = Path(__file__).resolve().parents[2] / "resources" / "models" / "raw.safetensors"


@pytest.mark.skipif(not SHIPPED_RAW.is_file(), reason="the joint raw model is not installed")
def test_shipped_raw_model_removes_sensor_noise(rng):
    """On a synthetic raw at a full-frame ISO 12800-like level, far closer to the clean scene than the linear
    demosaic of the noisy mosaic, with the noise model measured on the mosaic as the app does."""
    from denoiser.core.noise.raw_synthesis import FULL_FRAME

    img = cv2.GaussianBlur(rng.random((128, 128, 3)).astype(np.float32), (0, 0), 4) * 0.4 + 0.05
    shot, read = FULL_FRAME.shot(12800), FULL_FRAME.read(12800)
    cfa = mosaic(img)
    noisy = (cfa + np.sqrt(shot * cfa + read) * rng.standard_normal(cfa.shape)).astype(np.float32)
    model = load_raw_model(SHIPPED_RAW)
    out = denoise_demosaic(model, noisy, "RGGB", WB, SensorNoise.estimate(noisy, "RGGB"))
    plain = mhc_demosaic(pack(torch.from_numpy(noisy)[None, None]))[0].permute(1, 2, 0).numpy()

    def error(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean((x - img)[8:-8, 8:-8] ** 2)))

    assert error(out) < 0.5 * error(plain)
