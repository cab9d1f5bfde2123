"""Students of a trained U-Net (core/model/students.py): NAF blocks appended, levels widened, both starting from
the source's weights so that the student computes what the pruned source does until it is trained."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from denoiser.core.model.file import ModelCard, load_model, save_model
from denoiser.core.model.network import ModelConfig, NAFBlock, build_model, grown_blocks
from denoiser.core.model.prune import prune, pruned_config
from denoiser.core.model.students import student_from, transplant
from denoiser.core.training.trainer import TrainConfig
from tests.conftest import TINY

SOURCE = ModelConfig(widths=(8, 16, 24), enc_blocks=(1, 2), mid_blocks=3, dec_blocks=(1, 2))
STUDENTS = sorted((Path(__file__).resolve().parents[2] / "resources" / "train").glob("student_*.json"))


def random_model(config: ModelConfig, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)  # also the zero-initialised tail and NAF scales, so nothing is the identity
    return model.eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(7)
    return torch.rand(1, 3, 32, 32), torch.tensor([20.0])


def test_a_naf_student_starts_as_the_pruned_source_with_its_weights():
    source = random_model(SOURCE, 1)
    config = replace(SOURCE, enc_blocks=(1, 1), mid_blocks=1, mid_naf=2, dec_naf=(0, 1))
    student, done = student_from(source, ["mid.0", "mid.2", "enc.1.0"], config)
    assert done.identity == ["mid.1", "mid.2", "dec.1.2"] and not done.widened
    assert torch.equal(student.mid[0].c1.weight, source.mid[1].c1.weight)  # the kept block, renumbered
    assert torch.equal(student.enc[1][0].c2.bias, source.enc[1][1].c2.bias)
    assert isinstance(student.dec[1][2], NAFBlock) and not student.dec[1][2].gamma.any()
    x, s = inputs()
    with torch.inference_mode():
        expected = prune(source, ["mid.0", "mid.2", "enc.1.0"])(x, s)
        torch.testing.assert_close(student(x, s), expected, rtol=0, atol=1e-6)
        assert (expected - source(x, s)).abs().max() > 1e-4  # pruning changed it, so the check above means something


def test_a_wider_student_starts_as_the_pruned_source_and_its_new_channels_can_learn():
    source = random_model(SOURCE, 2)
    config = replace(SOURCE, widths=(8, 20, 32), enc_blocks=(1, 1), dec_blocks=(1, 1), mid_blocks=3)
    student, done = student_from(source, ["enc.1.1", "dec.1.0"], config)
    assert "enc.1.0.c1.weight" in done.widened and "head.weight" in done.copied and not done.identity
    w = student.enc[1][0].c1.weight
    assert torch.equal(w[:16, :16], source.enc[1][0].c1.weight) and not w[:, 16:].any() and w[16:, :16].any()
    x, s = inputs()
    with torch.no_grad():
        expected = prune(source, ["enc.1.1", "dec.1.0"])(x, s)
        torch.testing.assert_close(student(x, s), expected, rtol=0, atol=1e-5)
        student.down[1].weight[24:].normal_()  # the new channels carry values nothing reads yet
        torch.testing.assert_close(student(x, s), expected, rtol=0, atol=1e-5)
    loss = (student.train()(x, s) - x).square().mean()
    loss.backward()
    assert student.enc[1][0].c1.weight.grad[:, 16:].abs().sum() > 0  # the zero weights receive gradients


def test_the_pixel_shuffle_of_a_widened_level_keeps_the_source_channels():
    source = random_model(SOURCE, 3)
    student, done = student_from(source, [], replace(SOURCE, widths=(12, 16, 24)))
    assert "up.0.0.weight" in done.widened and "tail.weight" in done.widened
    x, s = inputs()
    with torch.inference_mode():
        torch.testing.assert_close(student(x, s), source(x, s), rtol=0, atol=1e-5)


@pytest.mark.parametrize("drop, config, message", [
    (["mid.0"], replace(SOURCE, mid_blocks=3), "must keep exactly"),
    ([], replace(SOURCE, widths=(8, 16, 16)), "does not fit"),
    ([], replace(SOURCE, widths=(8, 16, 24, 32), enc_blocks=(1, 2, 1), dec_blocks=(1, 2, 1)), "levels"),
])
def test_a_student_that_cannot_start_from_the_source_is_refused(drop, config, message):
    with pytest.raises(ValueError, match=message):
        student_from(random_model(SOURCE, 4), drop, config)


def test_transplant_refuses_widening_a_naf_block_and_a_source_weight_without_a_place():
    naf = ModelConfig(**(TINY | {"mid_naf": 1}))
    with pytest.raises(ValueError, match="NAF block cannot be widened"):
        transplant(build_model(ModelConfig(**(TINY | {"mid_naf": 1, "widths": (8, 24)}))), build_model(naf))
    with pytest.raises(ValueError, match="no place"):
        transplant(build_model(ModelConfig(**TINY)), build_model(naf))


def naf_reference(block: NAFBlock, x: torch.Tensor) -> torch.Tensor:
    """NAFNet's block written channel-first, as the paper's code computes it."""
    def norm(t: torch.Tensor) -> torch.Tensor:
        mu = t.mean(1, keepdim=True)
        return (t - mu) / torch.sqrt(t.var(1, keepdim=True, unbiased=False) + 1e-6)
    a, b = block.dw(block.expand(norm(x))).chunk(2, dim=1)
    y = a * b
    y = y * block.sca(F.adaptive_avg_pool2d(y, 1))
    x = x + block.beta * block.project(y)
    a, b = block.ffn_in(norm(x)).chunk(2, dim=1)
    return x + block.gamma * block.ffn_out(a * b)


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_naf_block_computes_nafnets_block(channels_last):
    block = NAFBlock(12)
    with torch.no_grad():
        block.beta.normal_()
        block.gamma.normal_()
    x = torch.randn(2, 12, 10, 14)
    if channels_last:
        x, block = x.contiguous(memory_format=torch.channels_last), block.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(block(x), naf_reference(block, x), rtol=1e-4, atol=1e-5)


def test_naf_counts_are_validated_and_kept_out_of_cards_without_them(tmp_path):
    with pytest.raises(ValueError, match="one entry per level"):
        ModelConfig(**(TINY | {"enc_naf": (1, 1)}))
    with pytest.raises(ValueError, match="0..16"):
        ModelConfig(**(TINY | {"mid_naf": 17}))
    assert "mid_naf" not in ModelConfig(**TINY).to_dict()
    config = ModelConfig(**(TINY | {"mid_naf": 2, "dec_naf": (1,)}))
    save_model(tmp_path / "s.safetensors", build_model(config), ModelCard(name="s", config=config))
    model, card = load_model(tmp_path / "s.safetensors")
    assert card.config == config and isinstance(model.dec[0][1], NAFBlock)


def test_students_are_not_grown_or_pruned_by_block_counts_alone():
    config = ModelConfig(**(TINY | {"mid_naf": 1}))
    with pytest.raises(ValueError, match="NAF"):
        grown_blocks(config, replace(config, mid_blocks=2))
    with pytest.raises(ValueError, match="NAF"):
        pruned_config(config, ["mid.0"])


@pytest.mark.parametrize("path", STUDENTS, ids=lambda p: p.stem)
def test_the_shipped_student_configs_build_and_denoise_at_the_input_shape(path):
    config = TrainConfig.from_file(path).model
    written, built = json.loads(path.read_text())["model"], config.to_dict()
    assert {k: built[k] for k in written} == written  # nothing in the file was ignored
    model = build_model(config).eval()
    m = config.size_multiple
    x = torch.rand(1, 3, m, 2 * m)
    with torch.inference_mode():
        assert model(x, torch.tensor([25.0])).shape == x.shape
