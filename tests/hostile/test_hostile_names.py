"""User-given model names never reach the file system unchecked; every delete stays inside its folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile_util import snapshot


@pytest.fixture
def data(isolated_user_data: Path, tiny_model_file: Path) -> Path:
    """A user data folder holding one fine-tuned model and one stopped run, all of which must survive."""
    models = isolated_user_data / "models"
    models.mkdir()
    shutil.copy(tiny_model_file, models / "mine.safetensors")
    run = isolated_user_data / "runs" / "other"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"keep")
    (run / "finetune.json").write_text("{}")
    return isolated_user_data


@pytest.mark.parametrize("name", ["..", ".", "../models", "/", "runs/../..", ".hidden", "", "a\\b", "nul"])
def test_finetune_discard_with_a_hostile_name_deletes_nothing(cli, data: Path, tmp_path: Path, name: str) -> None:
    before = snapshot(data)
    code, _, err = cli("finetune", tmp_path, "--name", name, "--discard")
    assert code == 2
    assert "model name" in err and ("path separators" in err or "may use letters" in err or "empty" in err
                                    or "reserved" in err)
    assert snapshot(data) == before


def test_finetune_discard_with_an_absolute_path_leaves_that_folder(cli, data: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "photo.jpg").write_bytes(b"precious")
    code, _, err = cli("finetune", tmp_path, "--name", str(victim), "--discard")
    assert code == 2 and "must not contain path separators" in err
    assert (victim / "photo.jpg").read_bytes() == b"precious"


def test_discard_never_follows_a_linked_run_folder(cli, data: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "photo.jpg").write_bytes(b"precious")
    (data / "runs" / "linked").symlink_to(victim, target_is_directory=True)
    before = snapshot(data)
    code, _, err = cli("finetune", tmp_path, "--name", "linked", "--discard")
    assert code == 2 and "is a link; refusing to delete through it" in err
    assert (victim / "photo.jpg").read_bytes() == b"precious" and snapshot(data) == before


@pytest.mark.parametrize("name", ["..", "../runs/other", "/tmp"])
def test_resume_with_a_hostile_name_is_refused(cli, data: Path, tmp_path: Path, name: str) -> None:
    before = snapshot(data)
    code, _, err = cli("finetune", tmp_path, "--name", name, "--resume")
    assert code == 2 and "model name" in err
    assert snapshot(data) == before


def test_has_unfinished_run_is_false_for_names_outside_the_runs_folder(data: Path) -> None:
    from denoiser.core.training.finetune import has_unfinished_run

    assert has_unfinished_run("other")
    assert not has_unfinished_run("../runs/other") and not has_unfinished_run("..")


def test_a_model_file_named_dot_safetensors_cannot_delete_the_runs_folder(cli, data: Path,
                                                                           tiny_model_file: Path) -> None:
    shutil.copy(tiny_model_file, data / "models" / "..safetensors")  # its stem is "."
    code, _, err = cli("models", "delete", ".")
    assert code == 1 and "no user model named '.'" in err
    assert (data / "runs" / "other" / "checkpoint.pt").read_bytes() == b"keep"
    code, out, _ = cli("models", "list", "--json")
    assert '"name": "."' not in out and '"name": "mine"' in out


def test_names_in_any_script_are_accepted_and_the_message_says_so(cli, data: Path) -> None:
    code, out, err = cli("models", "rename", "mine", "Café Ωmega")
    assert code == 0, err
    assert (data / "models" / "Café Ωmega.safetensors").is_file()
    code, _, err = cli("models", "rename", "Café Ωmega", "bad#name")
    assert code == 1 and "letters (any script), digits" in err
