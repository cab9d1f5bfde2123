import numpy as np
import pytest
import torch

from denoiser.core.inference.engine import Denoiser, receptive_radius, resolve_device
from denoiser.core.inference.tiling import plan_tiles
from denoiser.core.progress import Cancelled, CancelToken
from tests.conftest import make_tiny_model


def test_plan_covers_image_aligned():
    plan = plan_tiles(400, 1008, tile=256, overlap=64, multiple=16)
    cover = np.zeros((400, 1008), int)
    for t in plan:
        assert t.y0 % 16 == 0 and t.x0 % 16 == 0
        cover[t.y0:t.y1, t.x0:t.x1] += 1
    assert cover.min() >= 1


def test_tiled_equals_untiled(rng):
    model = make_tiny_model()
    radius = receptive_radius(model.config)
    overlap = -(-4 * radius // 4) * 4  # >= 4x the receptive radius, aligned
    img = rng.random((300, 517, 3), dtype=np.float32)
    whole = Denoiser(model, "cpu", tile=1024).denoise(img, 20.0)
    tiled_engine = Denoiser(model, "cpu", tile=256, overlap=overlap)
    assert len(plan_tiles(300, 520, 256, overlap, 4)) > 4
    tiled = tiled_engine.denoise(img, 20.0)
    assert np.abs(tiled - whole).max() < 1e-5


def test_seam_error_shrinks_with_overlap(rng):
    """Blending: the deviation from the untiled result falls steadily as the overlap grows."""
    model = make_tiny_model()
    img = rng.random((300, 517, 3), dtype=np.float32)
    whole = Denoiser(model, "cpu", tile=1024).denoise(img, 20.0)
    errs = [np.abs(Denoiser(model, "cpu", tile=256, overlap=ov).denoise(img, 20.0) - whole).max()
            for ov in (16, 48, 96)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-5


def test_grey_stays_grey_and_shape_kept(rng):
    """A grey photo runs as its RGB copy and comes back as one channel of that run."""
    img = 0.3 + 0.4 * rng.random((40, 50, 1), dtype=np.float32)  # mid-tones: the run seldom clips
    engine = Denoiser(make_tiny_model(), "cpu")
    out = engine.denoise(img, 10.0)
    as_rgb = engine.denoise(np.repeat(img, 3, axis=2), 10.0)
    assert out.shape == (40, 50, 1) and out.dtype == np.float32
    assert np.abs(out - img).max() > 1e-3  # the model did something
    inside = ((as_rgb > 0) & (as_rgb < 1)).all(axis=2)  # where no channel was clipped (clipping comes last)
    assert inside.mean() > 0.9 and np.allclose(out[..., 0][inside], as_rgb.mean(axis=2)[inside], atol=1e-5)


def test_auto_strength_uses_estimate(rng, monkeypatch):
    """Without a learned estimator installed, Auto runs the model at the classical estimate."""
    import denoiser.core.noise.learned as learned

    monkeypatch.setattr(learned, "shipped_estimator", lambda: None)
    img = np.clip(0.5 + rng.normal(0, 20 / 255, (96, 96, 3)), 0, 1).astype(np.float32)
    engine = Denoiser(make_tiny_model(), "cpu")
    assert 15 < engine_estimate(img) < 25
    auto = engine.denoise(img, None)
    assert np.allclose(auto, engine.denoise(img, engine_estimate(img)))
    assert not np.allclose(auto, engine.denoise(img, 2 * engine_estimate(img)))  # the level matters to this model


def engine_estimate(img):
    from denoiser.core.noise import estimate_sigma
    return estimate_sigma(img)


class CountingCancel(CancelToken):
    def __init__(self, after: int):
        super().__init__()
        self.after, self.reports = after, 0

    def report(self, fraction, message=""):
        self.reports += 1
        if self.reports == self.after:
            self.cancel()


def test_cancel_stops_within_one_tile(rng):
    img = rng.random((512, 512, 3), dtype=np.float32)
    engine = Denoiser(make_tiny_model(), "cpu", tile=256, overlap=32)
    calls = []
    original = engine._forward
    engine._forward = lambda x, s: calls.append(1) or original(x, s)
    token = CountingCancel(after=2)
    with pytest.raises(Cancelled):
        engine.denoise(img, 10.0, token)
    assert len(calls) == 2  # the third tile never started


def test_bad_inputs():
    engine = Denoiser(make_tiny_model(), "cpu")
    with pytest.raises(ValueError, match="strength"):
        engine.denoise(np.zeros((32, 32, 3), np.float32), 300.0)
    with pytest.raises(ValueError, match="HxWx"):
        engine.denoise(np.zeros((32, 32), np.float32), 10.0)
    with pytest.raises(ValueError):
        Denoiser(make_tiny_model(), "cpu", tile=100)


def test_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto").type in ("cpu", "mps")


class _LevelSpy(torch.nn.Module):
    """Stands in for the placed model: returns its input and records the level it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.levels.append(sigma.detach().clone())
        return x


def test_auto_feeds_the_noise_map_and_the_scale_multiplies_it(tiny_model_file, monkeypatch) -> None:
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.noise.level import NoiseLevel

    d = Denoiser.from_file(tiny_model_file, device="cpu")
    h, w = 64, 96
    noise_map = np.full((h // 2, w // 2), 5.0, np.float32)
    noise_map[:, w // 4:] = 40.0  # right half of the photo four... eight times noisier
    monkeypatch.setattr(d, "noise_map", lambda pixels: noise_map)
    spy = _LevelSpy()
    d.model = spy
    pixels = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    auto = d.auto_strength(pixels)
    assert isinstance(auto, NoiseLevel) and abs(float(auto) - 22.5) < 1e-4
    d.denoise(pixels, auto.scaled(2.0))
    level = spy.levels[-1][0, 0]
    assert level.shape == (h, w)  # full resolution; the model averages it onto its own grid
    assert torch.allclose(level[:, : w // 2 - 2].mean(), torch.tensor(10.0))
    assert torch.allclose(level[:, w // 2 + 2:].mean(), torch.tensor(80.0))
    d.denoise(pixels, 12.0)  # a constant strength stays one number
    assert spy.levels[-1].numel() == 1 and float(spy.levels[-1]) == 12.0


def test_auto_on_a_crop_estimates_the_crop_and_keeps_the_scale(tiny_model_file, monkeypatch) -> None:
    from denoiser.core.inference.engine import Denoiser

    d = Denoiser.from_file(tiny_model_file, device="cpu")
    calls = []
    monkeypatch.setattr(d, "noise_map", lambda p: calls.append(p.shape) or np.full(((p.shape[0] + 1) // 2,
                                                                                   (p.shape[1] + 1) // 2), 7.0))
    spy = _LevelSpy()
    d.model = spy
    pixels = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    auto = d.auto_strength(pixels).scaled(3.0)
    d.denoise(pixels[:32, :40], auto)
    assert calls[-1] == (32, 40, 3)
    assert torch.allclose(spy.levels[-1], torch.full_like(spy.levels[-1], 21.0))


def test_auto_refuses_a_photo_too_small_with_the_fix(tiny_model_file) -> None:
    from denoiser.core.inference.engine import Denoiser

    d = Denoiser.from_file(tiny_model_file, device="cpu")
    with pytest.raises(ValueError, match="--strength"):
        d.auto_strength(np.zeros((8, 300, 3), np.float32))


# --- geometric self-ensemble (passes) -------------------------------------------------------------------------

def test_views_are_the_eight_symmetries_and_each_undoes_itself():
    from denoiser.core.inference.ensemble import VIEWS, from_view, to_view

    x = torch.arange(12.0).reshape(1, 1, 3, 4)  # not square: a wrong inverse changes the shape
    seen = {(tuple(to_view(x, v).shape), tuple(to_view(x, v).flatten().tolist())) for v in VIEWS}
    assert len(seen) == 8
    for v in VIEWS:
        assert torch.equal(from_view(to_view(x, v), v), x)


@pytest.mark.parametrize("passes", [2, 8])
def test_passes_average_the_views_mapped_back(rng, passes):
    """N passes = the mean over the first N views of the one-pass result on the view, mapped back
    (then clipped to 0..1 once)."""
    from denoiser.core.inference.ensemble import VIEWS

    img = rng.random((37, 53, 3), dtype=np.float32)  # odd, non-square: padding and turns must line up
    engine = Denoiser(make_tiny_model(), "cpu")
    expected = np.zeros_like(img)
    for turns, mirror in VIEWS[:passes]:
        view = np.rot90(img, turns, axes=(0, 1))
        view = torch.from_numpy(np.ascontiguousarray(view[:, ::-1] if mirror else view)).permute(2, 0, 1)[None]
        out = engine.denoise_tensor(view, 15.0)[0].permute(1, 2, 0).numpy()  # unclipped
        out = out[:, ::-1] if mirror else out
        expected += np.rot90(out, -turns, axes=(0, 1)) / passes
    expected = np.clip(expected, 0, 1)
    got = engine.denoise(img, 15.0, passes=passes)
    assert got.shape == img.shape
    assert np.abs(got - expected).max() < 1e-5
    assert np.abs(got - engine.denoise(img, 15.0)).max() > 1e-4  # and it is not the one-pass result


def test_eight_passes_commute_with_mirroring(rng):
    """The 8-view mean is exactly equivariant: mirroring the photo mirrors the result (one pass is not)."""
    img = rng.random((40, 48, 3), dtype=np.float32)
    engine = Denoiser(make_tiny_model(), "cpu")
    mirrored = np.ascontiguousarray(img[:, ::-1])
    one = np.abs(engine.denoise(mirrored, 20.0)[:, ::-1] - engine.denoise(img, 20.0)).max()
    eight = np.abs(engine.denoise(mirrored, 20.0, passes=8)[:, ::-1] - engine.denoise(img, 20.0, passes=8)).max()
    assert one > 1e-4 and eight < 1e-5


class Recording(CancelToken):
    def __init__(self):
        super().__init__()
        self.seen = []

    def report(self, fraction, message=""):
        self.seen.append((fraction, message))


def test_passes_share_the_progress_bar_and_cancel_stops_them(rng):
    img = rng.random((300, 300, 3), dtype=np.float32)
    engine = Denoiser(make_tiny_model(), "cpu", tile=256, overlap=32)
    token = Recording()
    engine.denoise(img, 10.0, token, passes=4)
    fractions = [f for f, _ in token.seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(f == pytest.approx(0.5) and m.startswith("pass 2/4, tile") for f, m in token.seen)
    calls = []
    original = engine._forward
    engine._forward = lambda x, s: calls.append(1) or original(x, s)
    with pytest.raises(Cancelled):
        engine.denoise(img, 10.0, CountingCancel(after=len(token.seen) // 4 + 1), passes=4)
    assert len(calls) == len(token.seen) // 4 + 1  # stopped in the second pass, right after the tile asked


def test_bad_passes_are_refused_before_any_work(rng):
    engine = Denoiser(make_tiny_model(), "cpu")
    calls = []
    engine._forward = lambda x, s: calls.append(1)
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="passes must be one of 1, 2, 4, 8"):
            engine.denoise(rng.random((32, 32, 3), dtype=np.float32), None, passes=bad)
    assert calls == []


def test_noise_level_window_keeps_the_region_of_the_map() -> None:
    from denoiser.core.noise.level import NoiseLevel

    noise_map = np.arange(20 * 30, dtype=np.float32).reshape(20, 30) / 10
    level = NoiseLevel.auto(noise_map).scaled(2.0)
    part = level.window(4, 6, 15, 21)
    assert np.array_equal(part.map, noise_map[2:8, 3:11]) and part.scale == 2.0
    fresh = []
    got = part.map_for((11, 15), lambda: fresh.append(1) or np.zeros((6, 8), np.float32))
    assert not fresh and np.array_equal(got, noise_map[2:8, 3:11] * 2)
    odd = level.window(5, 6, 15, 21)  # not on the map's 2-px grid: estimated on the region instead
    assert odd.map is None and float(odd) == float(level)
