"""`denoiser finetune` and `denoiser models` end to end (in-process CLI, tiny model, tiny folder)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoiser.cli import main
from denoiser.core.model.network import ModelConfig

TINY = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)


@pytest.fixture
def folder(tiny_install: Path) -> Path:
    tmp_path = tiny_install
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        img = np.clip(rng.normal(128, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).resize((144, 144), Image.BICUBIC).save(photos / f"p{i}.png")
    return photos


def test_finetune_then_manage_models(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["finetune", str(folder), "--mode", "clean", "--sigma", "20", "--steps", "2",
                 "--name", "cli model", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "model 'cli model' saved" in out and "2 steps" in out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "default" in listing and "cli model" in listing and "fine-tuned (clean) from default" in listing
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["default", "cli model"]
    assert main(["models", "rename", "cli model", "mine"]) == 0
    assert main(["models", "export", "mine", str(tmp_path)]) == 0
    assert (tmp_path / "mine.safetensors").is_file()
    assert main(["models", "delete", "default"]) == 1
    assert "cannot be deleted" in capsys.readouterr().err
    assert main(["models", "delete", "mine"]) == 0
    assert main(["models", "import", str(tmp_path / "mine.safetensors"), "--name", "back"]) == 0
    assert main(["models", "reset"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["default", "back"]


def test_finetune_errors_are_clear(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["finetune", str(empty), "--mode", "clean", "--steps", "1", "--name", "x"]) == 2
    assert "no images found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # refused by the parser, before anything is read
        main(["finetune", str(folder), "--mode", "clean", "--steps", "1", "--name", "a/b"])
    assert usage.value.code == 2 and "path separators" in capsys.readouterr().err
    assert main(["finetune", str(folder), "--name", "ghost", "--resume"]) == 2
    assert "no unfinished fine-tuning run named 'ghost'" in capsys.readouterr().err
