"""Camera profiles (core.model.profiles): a fine-tuned model's camera and ISO range pick it for matching photos."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from denoiser.core.model.file import ModelCard, save_model
from denoiser.core.model.profiles import (
    ModelChooser,
    camera_of,
    choose_model,
    describe_profile,
    folder_profile,
    match_profile,
)
from denoiser.core.model.registry import list_models, user_models_dir


def exif_bytes(make: str, model: str, iso: int | None) -> bytes:
    """The EXIF block as a loaded Photo carries it."""
    buf = io.BytesIO()
    write_jpeg(buf, make, model, iso)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return im.info["exif"]


def write_jpeg(path, make: str, model: str, iso: int | None):
    e = Image.Exif()
    e[0x010F], e[0x0110] = make, model
    if iso:
        e.get_ifd(0x8769)[0x8827] = iso
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path, "JPEG", exif=e.tobytes())
    return path


def install_profile(name: str, camera: dict | None) -> None:
    from tests.conftest import make_tiny_model

    model = make_tiny_model()
    training = {"mode": "noisy"} | ({"camera": camera} if camera else {})
    save_model(user_models_dir() / f"{name}.safetensors", model,
               ModelCard(name=name, config=model.config, training=training), half=False)


@pytest.fixture
def profiles():
    install_profile("r5-high", {"make": "Canon", "model": "Canon EOS R5", "iso_min": 3200, "iso_max": 6400,
                                "photos": 12})
    install_profile("r5-low", {"make": "Canon", "model": "Canon EOS R5", "iso_min": 100, "iso_max": 400,
                               "photos": 5})
    install_profile("plain", None)
    return list_models()


def test_camera_read_from_exif():
    cam = camera_of(exif_bytes("NIKON CORPORATION", "NIKON Z 6", 12800))
    assert (cam.make, cam.model, cam.iso) == ("NIKON CORPORATION", "NIKON Z 6", 12800)
    assert camera_of(None) is None and camera_of(b"Exif\0\0garbage") is None


def test_folder_profile_takes_the_main_camera_and_its_iso_range(tmp_path):
    for i, iso in enumerate((800, 3200, 1600)):
        write_jpeg(tmp_path / f"a{i}.jpg", "Canon", "Canon EOS R5", iso)
    write_jpeg(tmp_path / "other.jpg", "SONY", "ILCE-7M3", 100)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    prof = folder_profile(sorted(tmp_path.iterdir()))
    assert prof == {"make": "Canon", "model": "Canon EOS R5", "iso_min": 800, "iso_max": 3200, "photos": 3}
    assert describe_profile(prof) == "Canon EOS R5, ISO 800-3200"


def test_folder_without_exif_has_no_profile(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    assert folder_profile([tmp_path / "x.png"]) is None


def test_match_by_camera_and_iso(profiles):
    # same camera spelled differently (make not repeated, other case/spacing), ISO inside the high range
    assert choose_model(None, exif_bytes("CANON", "EOS  R5", 5000)).model == "r5-high"
    assert choose_model("auto", exif_bytes("Canon", "Canon EOS R5", 200)).model == "r5-low"
    # one stop outside the range still matches; the nearest range wins
    assert choose_model(None, exif_bytes("Canon", "Canon EOS R5", 12800)).model == "r5-high"
    choice = choose_model(None, exif_bytes("Canon", "Canon EOS R5", 4000))
    assert choice.profile and "r5-high" in choice.reason and "Canon EOS R5, ISO 4000" in choice.reason


def test_no_match(profiles):
    assert choose_model(None, exif_bytes("Canon", "Canon EOS R6", 3200)).model is None  # other camera
    assert choose_model(None, exif_bytes("Canon", "Canon EOS R5", 1200)).model is None  # >1 stop from both
    choice = choose_model(None, None)
    assert choice.model is None and not choice.profile
    assert match_profile(camera_of(exif_bytes("Canon", "Canon EOS R5", 3200)), [e for e in profiles
                                                                             if e.name == "plain"]) is None


def test_pinned_model_wins_over_a_match(profiles):
    choice = choose_model("plain", exif_bytes("Canon", "Canon EOS R5", 3200))
    assert choice.model == "plain" and not choice.profile


def test_chooser_loads_each_model_once(profiles):
    loads = []
    chooser = ModelChooser(None, lambda name: loads.append(name) or f"engine:{name}", first="engine:default")
    a, _ = chooser.for_exif(exif_bytes("Canon", "Canon EOS R5", 3200))
    b, _ = chooser.for_exif(exif_bytes("Canon", "Canon EOS R5", 6400))
    c, _ = chooser.for_exif(None)
    assert (a, b, c) == ("engine:r5-high", "engine:r5-high", "engine:default") and loads == ["r5-high"]


def test_models_list_shows_profiles(profiles, capsys):
    from denoiser.cli.models_cmd import _list

    assert _list(False) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("r5-high"))
    assert "camera profile: Canon EOS R5, ISO 3200-6400" in line
    assert "camera profile" not in next(ln for ln in out.splitlines() if ln.startswith("plain"))


@pytest.mark.slow
def test_fine_tuned_model_records_its_folders_camera(tmp_path, monkeypatch):
    """A real (tiny, 2-step) fine-tune on EXIF-tagged photos: the card carries the profile, and a photo
    from that camera then picks the new model."""
    from denoiser.core.model.file import read_card
    from denoiser.core.training.finetune import finetune
    from tests.conftest import make_tiny_model

    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    base = make_tiny_model()
    save_model(tmp_path / "res/models/default.safetensors", base, ModelCard(name="default", config=base.config))
    folder = tmp_path / "shoot"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, iso in enumerate((1600, 3200, 2500, 1600)):
        e = Image.Exif()
        e[0x010F], e[0x0110] = "FUJIFILM", "X-T4"
        e.get_ifd(0x8769)[0x8827] = iso
        px = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(px).save(folder / f"p{i}.jpg", "JPEG", quality=95, exif=e.tobytes())
    res = finetune(folder, mode="clean", name="xt4", steps=2, minutes=0, sigma=15, threads=1)
    assert read_card(res.path).training["camera"] == {"make": "FUJIFILM", "model": "X-T4", "iso_min": 1600,
                                                      "iso_max": 3200, "photos": 4}
    assert choose_model(None, exif_bytes("FUJIFILM", "X-T4", 2000)).model == "xt4"
