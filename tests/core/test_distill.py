"""Distillation from a teacher's self-ensemble, and pruning a trained model by removing residual blocks."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from denoiser.cli import main
from denoiser.core.evaluation.block_worth import drop_costs
from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.model.network import ModelConfig, build_model, count_parameters
from denoiser.core.model.prune import prune, pruned_config
from denoiser.core.training.distill import SET_NAME, ensemble_output
from denoiser.core.training.trainer import TrainConfig, Trainer
from tests.conftest import TINY, make_tiny_model
from tests.core import test_training


def tiny_config(**kw) -> TrainConfig:
    return test_training.tiny_config(**({"teacher_crops": 6, "teacher_passes": 1} | kw))


photo_folder = test_training.photo_folder  # the same tiny photos (a fixture)


def random_model(config: ModelConfig, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


def test_the_students_loss_is_measured_against_the_teachers_output(photo_folder, tmp_path):
    identity = tmp_path / "identity.safetensors"  # a fresh model's tail is zero: it returns its input exactly
    save_model(identity, build_model(ModelConfig(**TINY)), ModelCard(name="identity", config=ModelConfig(**TINY)))
    trainer = Trainer(tiny_config(teacher_passes=8), [photo_folder], tmp_path / "run", device="cpu",
                      teacher=identity)
    trainer.train()
    tset = trainer.teacher_set
    assert tset is not None and len(tset) == 6
    assert tset.tensors["target"].shape == tset.tensors["noisy"].shape == (6, 3, 32, 32)
    assert torch.equal(tset.tensors["target"], tset.tensors["noisy"])  # the identity's targets: the noisy crops
    student = build_model(ModelConfig(**TINY))  # also the identity

    def loss(weight):  # the same draw of crops each time
        with torch.no_grad():
            return float(tset.loss(student, 4, torch.Generator().manual_seed(0), weight, nn.functional.l1_loss))
    to_teacher, to_clean, half = loss(1.0), loss(0.0), loss(0.5)
    assert to_teacher < 1e-6 and to_clean > 0.01
    assert half == pytest.approx(0.5 * to_clean, rel=1e-4)
    card = load_model(tmp_path / "run" / "model.safetensors")[1]
    assert card.training["teacher"] == {"file": str(identity), "passes": 8, "crops": 6}


def test_a_cached_set_from_another_teacher_is_refused(photo_folder, tmp_path, tiny_model_file):
    out = tmp_path / "run"
    Trainer(tiny_config(), [photo_folder], out, device="cpu", teacher=tiny_model_file).train()
    assert (out / SET_NAME).is_file()
    other = tmp_path / "other.safetensors"
    save_model(other, make_tiny_model(seed=5), ModelCard(name="other", config=ModelConfig(**TINY)), half=False)
    with pytest.raises(ValueError, match=SET_NAME):
        Trainer(tiny_config(max_steps=4), [photo_folder], out, device="cpu", teacher=other).train(resume=True)


def test_a_teacher_that_is_not_a_model_is_refused_by_the_cli(photo_folder, tmp_path, capsys):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("these are notes, not weights")
    code = main(["train", "--data", str(photo_folder), "--out", str(tmp_path / "run"), "--teacher", str(bad),
                 "--steps", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "notes.safetensors" in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_teacher_of_another_kind_is_refused(photo_folder, tmp_path):
    grey = tmp_path / "grey.safetensors"
    cfg = ModelConfig(**TINY, in_channels=1)
    save_model(grey, build_model(cfg), ModelCard(name="grey", config=cfg), half=False)
    with pytest.raises(ValueError, match="grey.safetensors"):
        Trainer(tiny_config(), [photo_folder], tmp_path / "run", device="cpu", teacher=grey)


def test_two_view_teacher_output_averages_the_anti_diagonal_mirror():
    teacher = make_tiny_model(seed=3)
    x = torch.rand(2, 3, 16, 16)
    level = torch.rand(2, 1, 8, 8) * 30

    def mirror(t):  # reflection across the anti-diagonal: t[i, j] -> t[W-1-j, H-1-i]; its own inverse
        return t.flip(-1).flip(-2).transpose(-1, -2)
    with torch.inference_mode():
        expected = 0.5 * (teacher(x, level) + mirror(teacher(mirror(x), mirror(level))))
    assert torch.allclose(ensemble_output(teacher, x, level, 2), expected, atol=1e-6)
    assert not torch.allclose(ensemble_output(teacher, x, level, 1), expected, atol=1e-4)


def test_big_teacher_sets_and_bad_settings_are_refused_before_work(photo_folder, tmp_path, tiny_model_file):
    with pytest.raises(ValueError, match="teacher crops"):
        Trainer(tiny_config(teacher_crops=10**6, patch=128), [photo_folder], tmp_path / "r", device="cpu",
                teacher=tiny_model_file)
    with pytest.raises(ValueError, match="passes"):
        tiny_config(teacher_passes=3)
    with pytest.raises(ValueError, match="teacher_weight"):
        tiny_config(teacher_weight=1.5)


# -- pruning -------------------------------------------------------------------------------------
BIG = replace(ModelConfig(**TINY), enc_blocks=(2,), mid_blocks=3, dec_blocks=(2,))


def test_pruned_model_computes_what_the_model_with_those_blocks_skipped_does():
    model = random_model(BIG, 1)
    small = prune(model, ["mid.1", "dec.0.0"])
    assert small.config == replace(BIG, mid_blocks=2, dec_blocks=(1,))
    assert count_parameters(small) < count_parameters(model)
    reference = copy.deepcopy(model)
    reference.mid[1] = nn.Identity()
    reference.dec[0][0] = nn.Identity()
    x, s = torch.rand(1, 3, 32, 32), torch.tensor([20.0])
    with torch.inference_mode():
        assert torch.allclose(small(x, s), reference(x, s), atol=1e-6)
        assert not torch.allclose(small(x, s), model(x, s), atol=1e-4)


def test_pruning_refuses_unknown_repeated_and_non_residual_blocks():
    with pytest.raises(ValueError, match="mid.7"):
        pruned_config(BIG, ["mid.7"])
    with pytest.raises(ValueError, match="twice"):
        pruned_config(BIG, ["mid.0", "mid.0"])
    with pytest.raises(ValueError, match="plain"):
        pruned_config(replace(BIG, block="plain"), ["mid.0"])


def test_drop_costs_are_zero_for_an_identity_block_and_not_for_a_working_one():
    model = random_model(BIG, 2)
    model.mid[2].start_as_identity()
    clean = torch.rand(1, 3, 32, 32)
    crops = [(clean, clean + 0.1 * torch.randn(clean.shape), 25.0),  # a sigma, and a noise-level map
             (clean, clean + 0.05 * torch.randn(clean.shape), torch.full((1, 1, 16, 16), 12.0))]
    costs = drop_costs(model, crops, ["mid.2", "mid.0"])
    assert abs(costs["mid.2"]) < 1e-6
    assert abs(costs["mid.0"]) > 1e-4
