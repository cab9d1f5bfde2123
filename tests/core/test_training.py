import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from denoiser.core.model.file import load_model
from denoiser.core.model.network import ModelConfig
from denoiser.core.progress import Cancelled, CancelToken
from denoiser.core.training.trainer import TrainConfig, Trainer
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(**kw) -> TrainConfig:
    base = dict(model=ModelConfig(**TINY), batch_size=2, patch=32, minutes=0, max_steps=2, threads=1,
                val_fraction=0.25, val_max=1, val_crop=32, val_every=1, warmup_steps=1, pool_size=8)
    return TrainConfig(**(base | kw))


@pytest.fixture
def photo_folder(tmp_path, rng):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        img = (rng.random((80, 96, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i}.png"), cv2.GaussianBlur(img, (5, 5), 2))
    (folder / "broken.png").write_bytes(b"not an image at all")
    return folder


def test_two_step_run_makes_a_loadable_model(photo_folder, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(), [photo_folder], out, device="cpu", name="t")
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.train()
    assert result["steps"] == 2
    model, card = load_model(out / "t.safetensors")
    moved = max(float((v - start[k]).abs().max()) for k, v in trainer.model.state_dict().items())
    assert moved > 0  # two optimiser steps changed the weights
    assert card.training["steps"] == 2 and card.config == ModelConfig(**TINY)
    assert any("broken.png" in k for k in result["skipped"])  # unreadable image skipped, listed


def test_resume_continues_the_same_run_exactly(photo_folder, tmp_path):
    straight = Trainer(tiny_config(max_steps=4), [photo_folder], tmp_path / "a", device="cpu")
    straight.train()

    class StopAfter(CancelToken):
        def report(self, fraction, message=""):
            if "step 2 " in message:
                self.cancel()

    first = Trainer(tiny_config(max_steps=4), [photo_folder], tmp_path / "b", device="cpu")
    with pytest.raises(Cancelled):
        first.train(progress=StopAfter())
    assert first.step == 2
    resumed = Trainer(tiny_config(max_steps=4), [photo_folder], tmp_path / "b", device="cpu")
    resumed.train(resume=True)
    assert resumed.step == 4
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k


def test_config_round_trip_and_validation():
    cfg = tiny_config()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        TrainConfig.from_dict(cfg.to_dict() | {"bogus": 1})
    with pytest.raises(ValueError, match="multiples"):
        tiny_config(patch=30)


def test_loss_setting_picks_the_criterion(photo_folder, tmp_path):
    clean = torch.rand(2, 3, 32, 32)

    def off_by_half(noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:  # every pixel 0.5 from the truth
        return clean + 0.5

    for name, expected in (("l1", 0.5), ("l2", 0.25)):  # mean |0.5| and mean 0.5 ** 2
        trainer = Trainer(tiny_config(loss=name), [photo_folder], tmp_path / name, device="cpu")
        got = trainer.supervised_loss(off_by_half, clean, torch.Generator().manual_seed(3))  # type: ignore[arg-type]
        assert float(got) == pytest.approx(expected)
    assert TrainConfig.from_dict({k: v for k, v in tiny_config().to_dict().items() if k != "loss"}).loss == "l1"
    with pytest.raises(ValueError, match="loss must be one of l1, l2, not 'huber'"):
        tiny_config(loss="huber")


def test_bad_config_files_name_the_file_and_the_fault(tmp_path):
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"batch_size": 4,')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        TrainConfig.from_file(bad_json)
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list\.json: a training config is a JSON object"):
        TrainConfig.from_file(not_object)
    bad_value = tmp_path / "zero.json"
    bad_value.write_text(json.dumps(tiny_config().to_dict() | {"batch_size": 0}))
    with pytest.raises(ValueError, match=r"zero\.json: need batch_size >= 1"):
        TrainConfig.from_file(bad_value)


def test_files_that_are_not_packs_are_refused_clearly(tmp_path):
    from denoiser.core.training.pack import PackSource

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"no zip here")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    for path in (garbage, other):
        with pytest.raises(ValueError, match=rf"{path.name}: not a training pack made by `denoiser pack`"):
            PackSource(path, torch.device("cpu"), torch.Generator())


def test_empty_folder_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        Trainer(tiny_config(), [empty], tmp_path / "run", device="cpu")


@pytest.mark.slow  # subprocesses: pack, then the shell script trains
def test_gpu_oneshot_script_trains_from_a_pack(photo_folder, tmp_path):
    """The GPU lease is rare: run the very one-shot script (pack -> train -> weights in OUT) on the CPU."""
    import os
    import subprocess
    import sys

    pack = tmp_path / "pack.npz"
    made = subprocess.run([sys.executable, "-m", "denoiser", "pack", "--data", str(photo_folder), "--out", str(pack),
                           "--max-mb", "0.05", "--crop", "64"], capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert pack.stat().st_size < 200_000
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config(val_every=1000).to_dict()))
    out = tmp_path / "out"
    env = os.environ | {"PYTHON": sys.executable, "ONESHOT_DEVICE": "cpu", "ONESHOT_CONFIG": str(config),
                        "ONESHOT_STEPS": "3", "ONESHOT_INIT": ""}
    run = subprocess.run(["sh", str(ROOT / "resources/train/gpu_oneshot.sh"), str(pack), str(out), "1"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    model, card = load_model(out / "gpu.safetensors")
    assert card.training["steps"] == 3 and card.config == ModelConfig(**TINY)
    assert (out / "gpu.json").is_file() and '"steps": 3' in (out / "log.txt").read_text()
    bad = subprocess.run(["sh", str(ROOT / "resources/train/gpu_oneshot.sh"), str(tmp_path / "missing.npz"),
                          str(tmp_path / "out2"), "1"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert bad.returncode != 0 and "missing.npz" in (tmp_path / "out2" / "log.txt").read_text()


@pytest.mark.parametrize("name", ["continue.json", "gpu.json"])
def test_shipped_training_configs_continue_from_the_shipped_weights(name):
    """Both configs start from resources/models/default.safetensors (`--init`, the GPU one-shot's default): their
    architecture must be the shipped one, or a run that should continue it grows it or stops at once (a GPU lease
    would be lost)."""
    from denoiser.core.model.file import read_card

    shipped = read_card(ROOT / "resources/models/default.safetensors").config
    cfg = TrainConfig.from_file(ROOT / "resources/train" / name)
    assert cfg.model == shipped


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_jpeg_quality_is_read_from_the_header(tmp_path, quality):
    from denoiser.core.training.patches import jpeg_quality

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (5, 5), 0)
    path = tmp_path / f"q{quality}.jpg"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert abs(jpeg_quality(path) - quality) <= 1
    png = tmp_path / "x.png"
    cv2.imwrite(str(png), img)
    assert jpeg_quality(png) is None
    assert jpeg_quality(tmp_path / "missing.jpg") is None


def test_high_quality_jpegs_keep_their_scale_for_training(tmp_path):
    from denoiser.core.training.patches import load_rgb8

    img = np.random.default_rng(1).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    fine, coarse = tmp_path / "fine.jpg", tmp_path / "coarse.jpg"
    cv2.imwrite(str(fine), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(coarse), img, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert load_rgb8(fine, 2, native_quality=90).shape == (160, 200, 3)
    assert load_rgb8(coarse, 2, native_quality=90).shape == (80, 100, 3)
    assert load_rgb8(fine, 2).shape == (80, 100, 3)  # 0: every JPEG is halved, as before


def test_jpeg_native_quality_out_of_range_is_refused(tmp_path):
    from denoiser.core.training.pack import make_pack

    with pytest.raises(ValueError, match="jpeg_native_quality must be 0..100"):
        TrainConfig(jpeg_native_quality=101)
    with pytest.raises(ValueError, match="0..100"):
        make_pack([tmp_path], tmp_path / "p.npz", native_quality=-1)


def test_training_can_start_from_a_smaller_model_and_grow_it(photo_folder, tmp_path):
    small = Trainer(tiny_config(), [photo_folder], tmp_path / "small", device="cpu", name="s")
    small.train()
    grown_cfg = ModelConfig(**(TINY | {"mid_blocks": 2}))
    trainer = Trainer(tiny_config(model=grown_cfg), [photo_folder], tmp_path / "big", device="cpu",
                      init_weights=tmp_path / "small" / "s.safetensors", name="b")
    base, _ = load_model(tmp_path / "small" / "s.safetensors")
    x, s = torch.rand(1, 3, 32, 32), torch.tensor([25.0])
    with torch.no_grad():
        torch.testing.assert_close(trainer.model.eval()(x, s), base(x, s), rtol=0, atol=1e-5)
    trainer.train()
    _, card = load_model(tmp_path / "big" / "b.safetensors")
    assert card.config == grown_cfg and card.training["grown_from"]["mid_blocks"] == 1
    wider = ModelConfig(**(TINY | {"widths": (8, 32)}))
    with pytest.raises(ValueError, match="architecture differs.*widths"):
        Trainer(tiny_config(model=wider), [photo_folder], tmp_path / "w", device="cpu",
                init_weights=tmp_path / "small" / "s.safetensors")
