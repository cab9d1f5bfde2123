"""Model management on the user's folder: names, rename, delete, export/import, reset."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from denoiser.core.model.file import ModelCard, load_model, read_card, save_model
from denoiser.core.model.network import ModelConfig, build_model

TINY = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DENOISER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    torch.manual_seed(0)
    save_model(tmp_path / "res/models/default.safetensors", build_model(TINY), ModelCard("default", TINY))
    from denoiser.core.model import store as model_store
    from denoiser.core.model.registry import user_models_dir

    card = ModelCard("mine", TINY, training={"mode": "noisy", "base_model": "default"})
    save_model(user_models_dir() / "mine.safetensors", build_model(TINY), card)
    return model_store


def names() -> list[str]:
    from denoiser.core.model.registry import list_models

    return [e.name for e in list_models()]


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "a\\b", "..", ".hidden", "x" * 65, "tab\there", "default",
                                  "DEFAULT", "mine"])
def test_bad_names_are_refused(store, bad: str) -> None:
    with pytest.raises(store.ModelStoreError):
        store.validate_name(bad)


def test_good_name_is_accepted_and_trimmed(store) -> None:
    assert store.validate_name("  Nikon D800 ISO-3200 (v2) ") == "Nikon D800 ISO-3200 (v2)"


def test_rename_moves_files_and_embedded_card(store, tmp_path: Path) -> None:
    entry = store.rename("mine", "renamed")
    assert names() == ["default", "renamed"]
    assert not (entry.path.parent / "mine.safetensors").exists()
    assert not (entry.path.parent / "mine.json").exists()
    assert read_card(entry.path).name == "renamed"
    out = store.export("renamed", tmp_path)  # the exported file alone carries the new name
    assert read_card(out).name == "renamed" and not out.with_suffix(".json").exists()
    with pytest.raises(store.ModelStoreError, match="already exists"):
        store.rename("renamed", "default")


def test_the_shipped_default_can_never_be_renamed_or_deleted(store) -> None:
    with pytest.raises(store.ModelStoreError, match="shipped model 'default' cannot be deleted"):
        store.delete("default")
    with pytest.raises(store.ModelStoreError, match="cannot be renamed"):
        store.rename("default", "other")
    assert "default" in names()


def test_delete_removes_model_card_and_run(store) -> None:
    from denoiser.core.model.registry import user_models_dir

    (store.runs_dir() / "mine").mkdir(parents=True)
    (store.runs_dir() / "mine" / "checkpoint.pt").write_bytes(b"x")
    store.delete("mine")
    assert names() == ["default"]
    assert not list(user_models_dir().iterdir())
    assert not (store.runs_dir() / "mine").exists()
    with pytest.raises(store.ModelStoreError, match="no user model named 'mine'"):
        store.delete("mine")


def test_export_then_import_round_trip(store, tmp_path: Path) -> None:
    out = store.export("mine", tmp_path / "shared.safetensors")
    with pytest.raises(store.ModelStoreError, match="already exists"):
        store.export("mine", out)
    with pytest.raises(store.ModelStoreError, match="already exists"):  # same stem as an installed model
        store.import_model(out, "mine")
    entry = store.import_model(out, "friend")
    assert entry.name == "friend" and not entry.builtin
    a, _ = load_model(entry.path)
    b, _ = load_model(out)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert read_card(entry.path).training["imported_from"] == str(out)
    assert store.export("default", tmp_path).name == "default.safetensors"


def test_import_rejects_bad_files_clearly(store, tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(store.ModelStoreError, match="cannot import junk.safetensors"):
        store.import_model(junk)
    (tmp_path / "x.pt").write_bytes(b"1")
    with pytest.raises(store.ModelStoreError, match="expected .safetensors"):
        store.import_model(tmp_path / "x.pt")
    with pytest.raises(store.ModelStoreError, match="file not found"):
        store.import_model(tmp_path / "missing.safetensors")
    mismatched = tmp_path / "mismatch.safetensors"  # card says one architecture, weights another
    save_model(mismatched, build_model(ModelConfig(widths=(8, 16, 32), enc_blocks=(1, 1), dec_blocks=(1, 1))),
               ModelCard("mismatch", TINY))
    with pytest.raises(store.ModelStoreError, match="do not match"):
        store.import_model(mismatched)
    assert names() == ["default", "mine"]


def test_reset_checks_the_default(store, tmp_path: Path) -> None:
    assert store.reset_to_default().builtin
    (tmp_path / "res/models/default.safetensors").write_bytes(b"broken")
    (tmp_path / "res/models/default.json").unlink()
    with pytest.raises(store.ModelStoreError, match="missing or damaged"):
        store.reset_to_default()


def test_describe_gives_architecture_parameters_and_origin(store) -> None:
    from denoiser.core.model.registry import find_model

    row = store.describe(find_model("mine"))
    assert row["parameters"] > 1000 and "8/16" in row["architecture"]
    assert row["origin"] == "fine-tuned (noisy) from default"
    assert store.describe(find_model(None))["origin"] == "shipped"
