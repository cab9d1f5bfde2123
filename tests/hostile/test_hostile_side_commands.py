"""The side commands (eval, pack, train, models, finetune --discard) follow the rules `denoise` follows: an
existing file is replaced only with --overwrite, an input of the same run never, and an operation either
completes or changes nothing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from hostile_util import snapshot, temp_files, write_png


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for i in range(2):
        write_png(tmp_path / "photos" / f"{i}.png", size=(64, 64), seed=i)
    return tmp_path / "photos"


@pytest.mark.parametrize("target", ["photos/0.png", "notes.json", "notes.txt", "photos"])
def test_eval_json_never_replaces_an_existing_file_or_an_input(cli, tmp_path: Path, photos: Path,
                                                               tiny_model_file: Path, target: str) -> None:
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    (tmp_path / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    for extra in ((), ("--overwrite",)) if target != "notes.json" else ((),):
        code, _, err = cli("eval", photos, "--sigma", "25", "--model", tiny_model_file, "--json",
                           tmp_path / target, *extra)
        assert code == 2 and f"--json {tmp_path / target}" in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before


def test_eval_json_replaces_an_earlier_result_only_with_overwrite(cli, tmp_path: Path, photos: Path,
                                                                 tiny_model_file: Path) -> None:
    out = tmp_path / "r.json"
    args = ("eval", photos, "--sigma", "25", "--model", tiny_model_file, "--json", out)
    assert cli(*args)[0] == 0 and out.read_text().startswith("[")
    first = out.read_text()
    code, _, err = cli(*args)
    assert code == 2 and "already exists; add --overwrite" in err and out.read_text() == first
    assert cli(*args, "--overwrite")[0] == 0 and not temp_files(tmp_path)


def test_eval_limit_below_zero_is_refused(cli, photos: Path) -> None:
    code, _, err = cli("eval", photos, "--limit", "-1")
    assert code == 2 and "argument --limit: must be a whole number of 0 or more" in err


@pytest.mark.parametrize("target", ["photos/0.png", "old.npz", "photos"])
def test_pack_out_never_replaces_an_existing_file_or_an_input(cli, tmp_path: Path, photos: Path,
                                                              target: str) -> None:
    (tmp_path / "old.npz").write_bytes(b"an earlier pack")
    before = snapshot(tmp_path)
    code, _, err = cli("pack", "--data", photos, "--out", tmp_path / target, "--max-mb", "0.01", "--crop", "32")
    assert code == 2 and str(tmp_path / target) in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_pack_out_must_be_npz_and_overwrite_replaces(cli, tmp_path: Path, photos: Path) -> None:
    code, _, err = cli("pack", "--data", photos, "--out", tmp_path / "p.png", "--max-mb", "0.01", "--crop", "32")
    assert code == 2 and "must end in .npz" in err and not (tmp_path / "p.png").exists()
    (tmp_path / "p.npz").write_bytes(b"old")
    code, _, err = cli("pack", "--data", photos, "--out", tmp_path / "p.npz", "--max-mb", "0.01", "--crop", "32",
                       "--overwrite")
    assert code == 0, err
    assert (tmp_path / "p.npz").read_bytes()[:2] == b"PK" and not temp_files(tmp_path)


@pytest.mark.parametrize("value", ["nan", "0", "-5", "inf"])
def test_pack_and_train_numbers_are_checked_at_the_parser(cli, tmp_path: Path, photos: Path, value: str) -> None:
    code, _, err = cli("train", "--data", photos, "--out", tmp_path / "run", "--minutes", value)
    assert code == 2 and "argument --minutes: must be a number above 0" in err
    code, _, err = cli("pack", "--data", photos, "--out", tmp_path / "p.npz", "--max-mb", value)
    assert code == 2 and "argument --max-mb: must be a number above 0" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.npz").exists()


@pytest.mark.parametrize("command", ["train", "train-raw"])
def test_train_out_that_is_a_file_is_refused(cli, tmp_path: Path, photos: Path, command: str) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    code, _, err = cli(command, "--data", photos, "--out", blocker, "--steps", "1")
    assert code == 2 and "is a file, not a run folder" in err and blocker.read_text() == "mine"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["train", "train-raw"])
def test_train_resume_over_a_pickled_checkpoint_names_the_code(cli, tmp_path: Path, photos: Path,
                                                               command: str) -> None:
    marker = tmp_path / "PWNED"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"config": _Payload(marker)}, run / "checkpoint.pt")
    code, _, err = cli(command, "--data", photos, "--out", run, "--steps", "1", "--resume", "--threads", "1")
    assert code == 2 and "contains code, not only weights; it was not loaded" in err
    assert "weights_only=False" not in err and "Traceback" not in err and not marker.exists()


def test_models_import_of_a_pickle_says_it_contains_code(cli, tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": _Payload(tmp_path / "PWNED")}, evil)
    code, _, err = cli("models", "import", evil)
    assert code == 1 and "this file contains code, not only weights; it was not loaded" in err
    assert "PyTorch 2.6" not in err and not (tmp_path / "PWNED").exists()


@pytest.fixture
def user(isolated_user_data: Path, tiny_model_file: Path) -> Path:
    (isolated_user_data / "models").mkdir()
    shutil.copy(tiny_model_file, isolated_user_data / "models" / "mine.safetensors")
    return isolated_user_data


def test_rename_of_a_model_with_an_invalid_name_completes(cli, user: Path, tiny_model_file: Path) -> None:
    shutil.copy(tiny_model_file, user / "models" / "bad#name.safetensors")  # copied in by hand
    code, out, err = cli("models", "rename", "bad#name", "good")
    assert code == 0 and "renamed 'bad#name' to 'good'" in out, err
    assert (user / "models" / "good.safetensors").is_file()
    assert not (user / "models" / "bad#name.safetensors").exists()


def test_rename_onto_an_existing_run_folder_changes_nothing(cli, user: Path) -> None:
    (user / "runs" / "other").mkdir(parents=True)
    (user / "runs" / "mine").mkdir()
    (user / "runs" / "mine" / "finetune.json").write_text("{}")
    before = snapshot(user)
    code, _, err = cli("models", "rename", "mine", "other")
    assert code == 1 and "run folder" in err and snapshot(user) == before


def test_discard_of_a_finished_model_changes_nothing(cli, user: Path, tmp_path: Path) -> None:
    (user / "runs" / "mine").mkdir(parents=True)
    (user / "runs" / "mine" / "finetune.json").write_text('{"finished": "2026-12-06"}')
    before = snapshot(user)
    code, _, err = cli("finetune", tmp_path, "--name", "mine", "--discard")
    assert code == 2 and "already exists" in err and snapshot(user) == before
    code, _, err = cli("finetune", tmp_path, "--name", "nothing", "--discard")
    assert code == 2 and "no stopped run named 'nothing' to discard" in err and snapshot(user) == before


def test_export_of_an_empty_name_is_refused(cli, user: Path, tmp_path: Path) -> None:
    code, _, err = cli("models", "export", "", tmp_path)
    assert code == 1 and "give the name of the model to export" in err and list(tmp_path.glob("*.safetensors")) \
        == [tmp_path / "tiny.safetensors"]


def _dncnn(path: Path) -> Path:
    torch.manual_seed(0)
    sd = {"model.0.weight": torch.randn(8, 3, 3, 3) * 0.01, "model.0.bias": torch.zeros(8),
          "model.2.weight": torch.randn(3, 8, 3, 3) * 0.01, "model.2.bias": torch.zeros(3)}
    torch.save(sd, path)
    return path


def test_a_user_model_and_a_community_model_never_share_a_name(cli, user: Path, tmp_path: Path,
                                                              tiny_model_file: Path) -> None:
    code, _, err = cli("models", "import", _dncnn(tmp_path / "mine.pth"))
    assert code == 1 and "a model named 'mine' already exists" in err
    assert cli("models", "import", tmp_path / "mine.pth", "--name", "dn")[0] == 0
    code, _, err = cli("models", "import", tiny_model_file, "--name", "DN")
    assert code == 1 and "a community model named 'dn' already exists" in err
    code, _, err = cli("models", "rename", "mine", "dn")
    assert code == 1 and "a community model named 'dn' already exists" in err
    assert (user / "models" / "mine.safetensors").is_file() and not (user / "models" / "DN.safetensors").exists()
