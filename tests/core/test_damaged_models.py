"""A model file that cannot be read is shown as damaged and can be deleted, never silently left out."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from denoiser.core.model.file import ModelCard, ModelFileError, save_model
from denoiser.core.model.network import ModelConfig, build_model

TINY = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)


@pytest.fixture
def folder(tiny_install: Path) -> Path:
    from denoiser.core.model.registry import user_models_dir

    models = user_models_dir()
    save_model(models / "good.safetensors", build_model(TINY), ModelCard("good", TINY))
    (models / "broken.safetensors").write_bytes(b"\x00" * 40)  # a truncated download
    return models


def test_a_damaged_file_is_listed_with_its_reason(folder: Path) -> None:
    from denoiser.core.model.registry import damaged_models, find_model, list_models

    assert [e.name for e in list_models()] == ["default", "good"]
    [bad] = damaged_models()
    assert (bad.name, bad.path, bad.builtin) == ("broken", folder / "broken.safetensors", False)
    assert "broken.safetensors" in bad.problem
    with pytest.raises(ModelFileError, match="the model 'broken' is damaged .*denoiser models delete broken"):
        find_model("broken")


def test_the_cli_lists_and_deletes_a_damaged_model(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from denoiser.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^broken +DAMAGED, cannot be used: .*broken.safetensors", out, re.M)
    assert "(delete it with: denoiser models delete broken)" in out
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "broken.safetensors" in rows["broken"]["damaged"] and "damaged" not in rows["good"]
    assert main(["models", "delete", "broken"]) == 0
    assert not (folder / "broken.safetensors").exists() and (folder / "good.safetensors").is_file()


def test_a_shipped_damaged_file_is_not_deleted(folder: Path, tmp_path: Path) -> None:
    from denoiser.core.model import store

    (tmp_path / "res/models/extra.safetensors").write_bytes(b"junk")
    with pytest.raises(store.ModelStoreError):
        store.delete("extra")
    assert (tmp_path / "res/models/extra.safetensors").is_file()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_profiles_treat_a_damaged_exif_as_no_camera_but_let_bugs_through(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    from denoiser.core.model import profiles

    assert profiles.camera_of(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f") is None  # an offset past the end
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe1garbage")
    assert profiles.camera_of_file(tmp_path / "x.jpg") is None

    def bug(exif: object) -> None:
        raise AttributeError("a programming error")

    monkeypatch.setattr(profiles, "camera_from_exif", bug)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "ok.jpg")
    with pytest.raises(AttributeError):
        profiles.camera_of_file(tmp_path / "ok.jpg")


def test_the_shipped_estimator_int8_build_and_raw_model_are_not_damaged_models(
        tiny_install: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from denoiser.cli import main
    from denoiser.core.model.network import RAW_ARCH
    from denoiser.core.model.registry import damaged_models, list_models
    from denoiser.core.noise.learned import NoiseMapNet, default_estimator_path, load_estimator, save_estimator
    from tests.conftest import TINY as TINY_KW

    shipped = tiny_install / "res/models"
    save_estimator(NoiseMapNet(), shipped / "estimator.safetensors", {"steps": 0})  # Auto's, no model card
    (shipped / "default.int8.onnx").write_bytes(b"\x08\x07onnx")  # the INT8 build of the default
    raw = ModelConfig(arch=RAW_ARCH, in_channels=4, **TINY_KW)
    save_model(shipped / "raw.safetensors", build_model(raw), ModelCard("raw", raw), half=False)

    assert damaged_models() == []
    assert [e.name for e in list_models()] == ["default"]
    assert [(e.name, e.card.config.kind) for e in list_models(None)] == [("default", "rgb"), ("raw", "raw")]
    assert default_estimator_path() == shipped / "estimator.safetensors"
    assert isinstance(load_estimator(default_estimator_path()), NoiseMapNet)  # still Auto's to load
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "estimator" not in out and "DAMAGED" not in out and "int8" not in out
