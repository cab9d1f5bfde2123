"""Model files are data: shapes checked against the card from the header before anything is allocated,
no pickle ever runs, and every bad file gets a message naming it and the fix."""
from __future__ import annotations

import json
import os
import pickle
import resource
from pathlib import Path

import pytest
import torch
from hostile_util import snapshot, write_png
from safetensors.torch import save

HUGE = {"arch": "unet-res", "in_channels": 3, "widths": [512] * 5, "enc_blocks": [16] * 4, "mid_blocks": 16,
        "dec_blocks": [16] * 4, "block": "res"}


def card(config: dict, name: str = "huge") -> str:
    return json.dumps({"format": "denoiser-model", "format_version": 1, "name": name, "model": config})


def huge_card_file(path: Path) -> Path:
    """A few hundred bytes whose card declares the largest allowed architecture (gigabytes of weights)."""
    path.write_bytes(save({"head.weight": torch.zeros(2)}, metadata={"card": card(HUGE)}))
    return path


def peak_rss_growth(fn) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def test_a_tiny_file_with_a_huge_card_is_refused_before_any_allocation(tmp_path: Path) -> None:
    from denoiser.core.model.file import ModelFileError, load_model

    path = huge_card_file(tmp_path / "huge.safetensors")
    assert path.stat().st_size < 1000

    def load() -> None:
        with pytest.raises(ModelFileError, match="weights do not match the card's architecture"):
            load_model(path)

    assert peak_rss_growth(load) < 200e6  # building the model would take ~2.8 GB


def test_a_huge_card_costs_nothing_to_list(cli, isolated_user_data: Path, tmp_path: Path) -> None:
    (isolated_user_data / "models").mkdir()
    huge_card_file(isolated_user_data / "models" / "huge.safetensors")
    result = {}
    growth = peak_rss_growth(lambda: result.setdefault("r", cli("models", "list")))
    code, out, _ = result["r"]
    assert code == 0 and "huge" in out and growth < 200e6


@pytest.mark.parametrize("entry", ["denoise", "import"])
def test_a_huge_card_is_refused_by_every_entry_point(cli, tmp_path: Path, entry: str) -> None:
    path = huge_card_file(tmp_path / "huge.safetensors")
    src = write_png(tmp_path / "a.png")
    if entry == "denoise":
        code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", "--model", path, "--strength", "5")
        assert code == 2
    else:
        code, _, err = cli("models", "import", path)
        assert code == 1
    assert "weights do not match the card's architecture" in err and str(path.name) in err


@pytest.mark.parametrize("content", [b"not a model at all, just text", b"\xff" * 64, b"", b"\x10\x00"])
def test_a_file_that_is_not_safetensors_is_named_as_such(cli, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    src = write_png(tmp_path / "a.png")
    code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", "--model", bad, "--strength", "5")
    assert code == 2
    assert f"{bad}: not a model file" in err and "header too large" not in err.lower()


def test_a_truncated_model_is_called_damaged(cli, tmp_path: Path, tiny_model_file: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_model_file.read_bytes()[:-100])
    code, _, err = cli("models", "import", cut)
    assert code == 1 and "damaged or truncated" in err


def test_a_missing_model_path_is_not_called_an_unknown_name(cli, tmp_path: Path) -> None:
    src = write_png(tmp_path / "a.png")
    missing = tmp_path / "gone" / "missing.safetensors"
    code, _, err = cli("denoise", src, "-o", tmp_path / "o.png", "--model", missing, "--strength", "5")
    assert code == 2 and f"{missing}: model file not found" in err and "no model named" not in err


class _Payload:
    """Pickled, this runs `touch MARKER` when unpickled: it must never be."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_code_running_pickles_never_run_from_any_model_entry_point(cli, tmp_path: Path, isolated_user_data: Path,
                                                                  suffix: str) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / f"evil{suffix}"
    torch.save({"state_dict": _Payload(marker)}, evil) if suffix != ".safetensors" else \
        evil.write_bytes(pickle.dumps(_Payload(marker)))
    src = write_png(tmp_path / "photos" / "a.png", size=(96, 96))
    before = snapshot(isolated_user_data)
    attempts = [("denoise", src, "-o", tmp_path / "o.png", "--model", evil, "--strength", "5"),
                ("models", "import", evil),
                ("finetune", tmp_path / "photos", "--name", "x", "--from", evil, "--steps", "1", "--sigma", "10"),
                ("batch", tmp_path / "photos", "-o", tmp_path / "out", "--model", evil, "--strength", "5"),
                ("train", "--data", tmp_path / "photos", "--out", tmp_path / "run", "--init", evil, "--steps", "1"),
                ("eval", tmp_path / "photos", "--model", evil)]
    for args in attempts:
        code, _, err = cli(*args)
        assert code in (1, 2) and "Traceback" not in err, (args, err)
        assert not marker.exists(), args
    assert snapshot(isolated_user_data) == before
    assert not (tmp_path / "o.png").exists()


def test_no_module_loads_pickles_unguarded() -> None:
    """Every torch.load in the package passes weights_only=True; numpy never allows pickles."""
    root = Path(__file__).resolve().parents[2] / "denoiser"
    for path in root.rglob("*.py"):
        text = path.read_text()
        for call in ("torch.load(", "np.load("):
            start = 0
            while (i := text.find(call, start)) >= 0:
                args = text[i:i + 200].split("\n\n")[0]  # the call and its arguments
                assert ("weights_only=True" if call == "torch.load(" else "allow_pickle=False") in args, \
                    f"{path}: {args}"
                start = i + 1
        assert "pickle.load(" not in text and "pickle.loads(" not in text, path
