"""Noisy mode's targets: the base's expert blended in as the app blends it, and the options tried and kept off
(benchmarks/finetune_camera.py --teacher-passes, --r2r): what each feeds the model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from denoiser.core.training.finetune_modes import NoisyFinetuneTrainer
from tests.core.test_finetune import env  # noqa: F401  (the tiny shipped model)


def _ramp_base(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """A base that is not equivariant: it adds a left-to-right ramp, and the level map (upsampled 2x)."""
    ramp = torch.linspace(-1.0, 1.0, x.shape[-1]).expand_as(x)
    return x + ramp + F.interpolate(level, size=x.shape[-2:], mode="nearest")


@pytest.mark.parametrize("passes", [1, 8])
def test_the_teacher_averages_its_views_and_turns_the_map_with_the_crop(passes: int) -> None:
    """8 views cancel the base's ramp (each turn of the crop turns it); the level map is turned with the crop, so
    the part of the output that follows the map comes back where it was."""
    x = torch.rand(2, 3, 8, 8)
    level = torch.zeros(2, 1, 4, 4)
    level[:, :, 0, :] = 5.0  # an asymmetric map: only the top rows
    fake = SimpleNamespace(target_sigma=None, base=_ramp_base, teacher_passes=passes, expert=None)
    fake._base_output = lambda x, s: NoisyFinetuneTrainer._base_output(fake, x, s)  # type: ignore[arg-type]
    out = NoisyFinetuneTrainer._pseudo_clean(fake, x, level)  # type: ignore[arg-type]
    follows_map = F.interpolate(level, size=(8, 8), mode="nearest")
    residual = out - x - follows_map
    ramp = torch.linspace(-1.0, 1.0, 8).expand_as(x)
    expected = torch.zeros_like(x) if passes == 8 else ramp
    assert torch.allclose(residual, expected, atol=1e-5)


def test_recorrupted_pairs_take_the_photo_plus_noise_to_the_photo_minus_it() -> None:
    """r2r: input noisy + a z at sqrt(1 + a^2) x the crop's (jittered) map, target noisy - z / a; a model that
    returns that target exactly has zero loss, and one that returns the photo does not."""
    a = 0.5
    noisy = torch.rand(2, 3, 8, 8)
    z = torch.randn(2, 3, 8, 8)
    measured = torch.full((2, 1, 4, 4), 10.0)
    jitter = torch.tensor([1.0, 1.2])
    bank = SimpleNamespace(sample=lambda shape, gen, at: z.clone())
    fake = SimpleNamespace(bank=bank, r2r_alpha=a)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def perfect(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        seen.append((x, level))
        return noisy - z / a

    loss = NoisyFinetuneTrainer._r2r_loss(fake, perfect, noisy, measured, jitter,  # type: ignore[arg-type]
                                          torch.Generator())
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    x, level = seen[0]
    assert torch.allclose(x, noisy + a * z)
    assert torch.allclose(level[:, 0, 0, 0], 10.0 * jitter * (1 + a * a) ** 0.5)
    unchanged = NoisyFinetuneTrainer._r2r_loss(fake, lambda x, level: noisy, noisy, measured,  # type: ignore[arg-type]
                                               jitter, torch.Generator())
    assert float(unchanged) == pytest.approx(float((z / a).abs().mean()), rel=1e-5)


def test_the_targets_blend_in_the_bases_expert_as_the_app_does() -> None:
    """Noisy mode's pseudo-clean target is the base's output as the app makes it: the expert's where the level
    reaches the ramp's end, the base's below its start, the ramp's share between (a map, or one level per crop)."""
    from denoiser.core.model.experts import HEAVY_RAMP

    x = torch.rand(2, 3, 8, 8)
    base = lambda v, s: torch.zeros_like(v)  # noqa: E731
    expert = lambda v, s: torch.ones_like(v)  # noqa: E731
    fake = SimpleNamespace(base=base, expert=expert, ramp=HEAVY_RAMP)
    middle = (HEAVY_RAMP.start + HEAVY_RAMP.full) / 2
    level = torch.full((2, 1, 4, 4), HEAVY_RAMP.start - 5)
    level[:, :, :, 2:] = HEAVY_RAMP.full + 5
    level[1, :, 0, 0] = middle
    out = NoisyFinetuneTrainer._base_output(fake, x, level)  # type: ignore[arg-type]
    assert torch.equal(out[0, :, :, :4], torch.zeros(3, 8, 4))
    assert torch.equal(out[:, :, :, 4:], torch.ones(2, 3, 8, 4))
    assert torch.allclose(out[1, :, :2, :2], torch.full((3, 2, 2), 0.5))
    per_crop = NoisyFinetuneTrainer._base_output(fake, x, torch.tensor([10.0, middle]))  # type: ignore[arg-type]
    assert float(per_crop[0].abs().max()) == 0 and torch.allclose(per_crop[1], torch.full((3, 8, 8), 0.5))
    fake.expert = None
    assert torch.equal(NoisyFinetuneTrainer._base_output(fake, x, level), torch.zeros_like(x))  # type: ignore[arg-type]


@pytest.mark.slow  # a real noisy-mode fine-tune (one step)
def test_a_noisy_fine_tune_of_a_base_with_an_expert_makes_its_targets_with_it(env, monkeypatch) -> None:  # noqa: F811
    """With an expert beside the base, the trainer loads it, every target goes through the blend with it, and the
    published model then runs with that same expert file."""
    import denoiser.core.training.finetune_modes as modes
    from denoiser.core.inference.engine import Denoiser
    from denoiser.core.model.experts import HEAVY_RAMP, heavy_expert_path
    from denoiser.core.model.file import ModelCard, save_model
    from denoiser.core.model.network import build_model
    from denoiser.core.training.finetune import finetune
    from tests.core.test_finetune import TINY, make_folder

    expert = heavy_expert_path(env / "res/models/default.safetensors")
    save_model(expert, build_model(TINY), ModelCard(name="default.heavy", config=TINY))
    monkeypatch.setattr(modes, "auto_map", lambda img: np.full(((img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2),
                                                              HEAVY_RAMP.full + 5, np.float32))
    seen: list[bool] = []
    blend = modes.NoisyFinetuneTrainer._base_output

    def spy(self, noisy, strength):
        seen.append(self.expert is not None)
        return blend(self, noisy, strength)

    monkeypatch.setattr(modes.NoisyFinetuneTrainer, "_base_output", spy)
    res = finetune(make_folder(env, count=3, noise=30), mode="noisy", name="heavy folder", steps=1, minutes=0,
                   threads=1)
    assert seen and all(seen)
    engine = Denoiser.from_file(res.path, device="cpu")
    assert engine.heavy is not None and engine.heavy.path == expert
