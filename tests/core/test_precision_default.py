"""Precision "auto", the CLI's default (core.inference.quantized.auto_int8): the model's INT8 build where it runs
(the CPU, ONNX Runtime, a build from these weights), else fp32; what ran is recorded, never "auto"."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from denoiser.core.inference.engine import Denoiser
from denoiser.core.inference.quantized import auto_int8, build_int8, int8_path
from tests.core.test_quantized import smooth_crops


def tiny_model_file(path: Path, seed: int) -> Path:
    from denoiser.core.model.file import ModelCard, save_model
    from tests.conftest import make_tiny_model

    model = make_tiny_model(seed)
    save_model(path, model, ModelCard(name=path.stem, config=model.config), half=False)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a tiny model with its INT8 build beside it, a tiny model without one)."""
    folder = tmp_path_factory.mktemp("auto-precision")
    built = tiny_model_file(folder / "built.safetensors", 3)
    build_int8(built, smooth_crops(6), int8_path(built))
    return built, tiny_model_file(folder / "plain.safetensors", 4)


def test_auto_runs_the_int8_build_on_the_cpu(models) -> None:
    built, _ = models
    engine = Denoiser.from_file(built, device="cpu", precision="auto")
    assert engine.precision == "int8" and engine.int8 is not None and engine.notices == []
    noisy = smooth_crops(1, 64)[0]
    explicit = Denoiser.from_file(built, device="cpu", precision="int8")
    assert np.array_equal(engine.denoise(noisy, 20.0), explicit.denoise(noisy, 20.0))


def test_auto_is_fp32_without_a_build_on_a_gpu_or_without_an_int8_runtime(models, monkeypatch) -> None:
    built, plain = models
    no_build = Denoiser.from_file(plain, device="cpu", precision="auto")
    assert no_build.precision == "fp32" and no_build.notices == []
    assert auto_int8(torch.device("cuda", 0), built) == (None, None)  # INT8 runs on the CPU only
    assert auto_int8(torch.device("cpu"), None) == (None, None)  # a community model: no file, no build
    assert Denoiser.from_file(built, device="cpu", precision="fp32").precision == "fp32"  # explicit fp32 kept
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnxruntime", "openvino") else real(name))
    assert Denoiser.from_file(built, device="cpu", precision="auto").precision == "fp32"  # no INT8 runtime


def test_auto_with_a_build_of_other_weights_runs_fp32_and_says_why(models, tmp_path: Path) -> None:
    built, _ = models
    stale = tiny_model_file(tmp_path / "retrained.safetensors", 9)
    int8_path(stale).write_bytes(int8_path(built).read_bytes())  # the weights changed, the build did not
    engine = Denoiser.from_file(stale, device="cpu", precision="auto")
    assert engine.precision == "fp32" and engine.int8 is None
    assert len(engine.notices) == 1 and "fp32" in engine.notices[0] and "built from other weights" in engine.notices[0]
    assert str(int8_path(stale)) in engine.notices[0]


@pytest.mark.parametrize("command", ["denoise", "batch"])
def test_the_cli_default_records_the_precision_that_ran(models, tmp_path: Path, command: str) -> None:
    from PIL import Image

    from denoiser.cli import main
    from denoiser.core.io.photo import load_photo
    from denoiser.exit_codes import ExitCode

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray((smooth_crops(1, 64)[0] * 255).astype(np.uint8)).save(folder / "a.png")
    for model, ran in zip(models, ("int8", "fp32"), strict=True):
        out = tmp_path / f"out-{ran}"
        if command == "denoise":
            out.mkdir()
            args = ["denoise", str(folder / "a.png"), "-o", str(out / "a.png")]
        else:
            args = ["batch", str(folder), "-o", str(out)]
        assert main([*args, "--model", str(model), "--strength", "20", "--device", "cpu"]) == ExitCode.OK
        xmp = load_photo(next(out.glob("a*.png"))).xmp.decode()
        assert f'pdn:Precision="{ran}"' in xmp and "auto" not in xmp.split("pdn:Precision")[1][:10]
