"""Numbers are validated at the parser: no silent default, no error from deep inside the work."""
from __future__ import annotations

from pathlib import Path

import pytest
from hostile_util import snapshot, write_png


@pytest.mark.parametrize("flag,value,message", [
    ("--steps", "0", "must be a whole number above 0"),
    ("--steps", "-1", "must be a whole number above 0"),
    ("--minutes", "nan", "must be a number above 0"),
    ("--minutes", "inf", "must be a number above 0"),
    ("--minutes", "0", "must be a number above 0"),
    ("--threads", "0", "must be a whole number above 0"),
    ("--sigma", "nan", "a noise level in 0..255"),
    ("--sigma", "300", "a noise level in 0..255"),
])
def test_finetune_numbers(cli, tmp_path: Path, isolated_user_data: Path, flag: str, value: str,
                          message: str) -> None:
    code, _, err = cli("finetune", tmp_path, "--name", "x", flag, value)
    assert code == 2 and f"argument {flag}: {message}" in err
    assert not (isolated_user_data / "runs").exists()


@pytest.mark.parametrize("flag,value,message", [
    ("--minutes", "nan", "must be a number above 0"),
    ("--minutes", "0", "must be a number above 0"),
    ("--threads", "0", "must be a whole number above 0"),
])
def test_train_estimator_numbers(cli, tmp_path: Path, flag: str, value: str, message: str) -> None:
    code, _, err = cli("train-estimator", "--data", tmp_path, "--out", tmp_path / "run", flag, value)
    assert code == 2 and f"argument {flag}: {message}" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "lots"])
def test_max_megapixels_is_checked_before_any_photo(cli, tmp_path: Path, value: str) -> None:
    src = write_png(tmp_path / "a.png")
    code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", f"--max-megapixels={value}")
    assert code == 2 and "argument --max-megapixels:" in err and "damaged" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", ["denoise", "batch"])
def test_tile_zero_is_refused_not_taken_as_default(cli, tmp_path: Path, command: str) -> None:
    src = write_png(tmp_path / "in" / "a.png")
    target = ["-o", tmp_path / "o.png"] if command == "denoise" else ["-o", tmp_path / "out"]
    code, _, err = cli(command, src if command == "denoise" else src.parent, *target, "--tile", "0")
    assert code == 2 and "argument --tile: must be a whole number above 0" in err


def test_a_tile_below_the_minimum_names_the_limit(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    src = write_png(tmp_path / "a.png")
    code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", "--tile", "100", "--model", tiny_model_file)
    assert code == 2 and "tile must be >= 256" in err


def test_a_failed_finetune_leaves_no_empty_run_folder(tmp_path: Path, isolated_user_data: Path,
                                                      tiny_model_file: Path, monkeypatch) -> None:
    from denoiser.core.training import finetune as ft

    for i in range(3):
        write_png(tmp_path / "photos" / f"{i}.png", size=(96, 96), seed=i)

    def broken(self, *args, **kwargs):
        assert (self.out / "finetune.json").is_file()  # the run folder exists by now
        raise RuntimeError("training failed")

    monkeypatch.setattr(ft.FinetuneTrainer, "train", broken)
    with pytest.raises(RuntimeError, match="training failed"):
        ft.finetune(tmp_path / "photos", mode="clean", name="first", base_model=str(tiny_model_file), steps=2,
                    minutes=0, sigma=20, threads=1)
    assert not (isolated_user_data / "runs" / "first").exists()


def test_finetune_into_an_unwritable_user_folder_is_refused_before_the_scan(tmp_path: Path, monkeypatch) -> None:
    from denoiser.core.training import finetune as ft

    blocker = tmp_path / "data"
    blocker.write_bytes(b"a file where the user data folder should be")
    monkeypatch.setenv("DENOISER_DATA_DIR", str(blocker))
    monkeypatch.setattr(ft, "_images", lambda folder: pytest.fail("the folder was scanned first"))
    before = snapshot(tmp_path)
    with pytest.raises(ft.FinetuneError, match="user data folder cannot take a new model: .* is not a folder"):
        ft.finetune(tmp_path, mode="clean", name="x", steps=1, minutes=0)
    assert snapshot(tmp_path) == before
