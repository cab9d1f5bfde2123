"""Every file the app keeps is listed with its size and can be deleted (issue 30 item 6): a stopped
fine-tuning run's checkpoint shows in `denoiser models` and `denoiser models delete NAME` frees it."""
from __future__ import annotations

from pathlib import Path

from denoiser.cli import main


def stopped_run(data: Path, name: str, size: int) -> Path:
    run = data / "runs" / name
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"\0" * size)
    (run / "spec.json").write_text("{}")
    return run


def test_a_stopped_run_is_listed_with_its_size_and_deletable(capsys, isolated_user_data: Path,
                                                             tiny_model_file: Path) -> None:
    assert main(["models", "import", str(tiny_model_file), "--name", "mine"]) == 0
    run = stopped_run(isolated_user_data, "holiday", 2_500_000)
    capsys.readouterr()
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "unfinished fine-tuning run 'holiday': 2.5 MB" in err and "denoiser models delete holiday" in err
    assert "mine" in out and " kB" in out  # each model with its size
    assert main(["models", "delete", "holiday"]) == 0
    assert not run.exists()
    assert (isolated_user_data / "models" / "mine.safetensors").exists()  # nothing else went
    assert main(["models", "delete", "holiday"]) != 0  # gone: a clear refusal, nothing deleted

