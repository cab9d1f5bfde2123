"""Bring your own model (core.model.foreign): community layouts recognised from their keys, never any code run."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from denoiser.core.inference.engine import open_denoiser
from denoiser.core.model.foreign import ForeignModelError, foreign_cards, import_foreign, load_foreign, read_state_dict


def _w(gen: torch.Generator, *shape: int, std: float = 0.02) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * std


def dncnn_state(channels: int = 3, nc: int = 16, layers: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """KAIR DnCNN keys: model.0 conv, model.1 ReLU, model.2 conv, ..., last conv (bias on every conv)."""
    g = torch.Generator().manual_seed(seed)
    sd, cin = {}, channels
    for i in range(layers):
        cout = channels if i == layers - 1 else nc
        sd[f"model.{2 * i}.weight"], sd[f"model.{2 * i}.bias"] = _w(g, cout, cin, 3, 3), _w(g, cout)
        cin = cout
    return sd


def drunet_state(nc=(8, 16, 32, 64), nb: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """KAIR DRUNet keys (bias-free): m_head, m_down1-3 (res blocks + 2x2 strided conv), m_body, m_up3-1
    (2x2 transposed conv + res blocks), m_tail; input = RGB + noise-level map."""
    g = torch.Generator().manual_seed(seed)
    sd = {"m_head.weight": _w(g, nc[0], 4, 3, 3)}

    def res(prefix: str, c: int) -> None:
        for j in range(nb):
            sd[f"{prefix}.{j}.res.0.weight"] = _w(g, c, c, 3, 3)
            sd[f"{prefix}.{j}.res.2.weight"] = _w(g, c, c, 3, 3)

    for i in range(3):
        res(f"m_down{i + 1}", nc[i])
        sd[f"m_down{i + 1}.{nb}.weight"] = _w(g, nc[i + 1], nc[i], 2, 2)
    res("m_body", nc[3])
    for i in (3, 2, 1):
        sd[f"m_up{i}.0.weight"] = _w(g, nc[i], nc[i - 1], 2, 2)  # ConvTranspose2d: (in, out, k, k)
        for j in range(nb):
            sd[f"m_up{i}.{j + 1}.res.0.weight"] = _w(g, nc[i - 1], nc[i - 1], 3, 3)
            sd[f"m_up{i}.{j + 1}.res.2.weight"] = _w(g, nc[i - 1], nc[i - 1], 3, 3)
    sd["m_tail.weight"] = _w(g, 3, nc[0], 3, 3)
    return sd


@pytest.fixture
def image(rng) -> np.ndarray:
    return rng.uniform(0.3, 0.7, (40, 56, 3)).astype(np.float32)


def test_dncnn_from_pth_and_safetensors_give_the_same_result(tmp_path, image):
    sd = dncnn_state()
    torch.save({"params": sd}, tmp_path / "dncnn.pth")  # KAIR/BasicSR wrap the state dict like this
    save_file(sd, str(tmp_path / "dncnn.safetensors"))
    a = open_denoiser(str(tmp_path / "dncnn.pth"), device="cpu").denoise(image, 25.0)
    b = load_foreign(str(tmp_path / "dncnn.safetensors"))[0]
    assert b.architecture == "dncnn"
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        expected = (x - b.net(x)).clamp(0, 1)[0].permute(1, 2, 0).numpy()  # DnCNN: input minus predicted noise
    np.testing.assert_allclose(a, expected, atol=1e-5)
    assert np.abs(a - image).max() > 1e-3


def test_a_model_without_noise_input_gets_the_strength_by_blending(tmp_path, image):
    torch.save(dncnn_state(), tmp_path / "d.pth")
    den = open_denoiser(str(tmp_path / "d.pth"), device="cpu")  # nominal level 25
    full, half, none = (den.denoise(image, s) for s in (25.0, 12.5, 0.0))
    np.testing.assert_allclose(none, image, atol=1e-6)
    np.testing.assert_allclose(half, (image + full) / 2, atol=1e-5)
    np.testing.assert_allclose(den.denoise(image, 60.0), full, atol=1e-6)  # at most the full result


def test_drunet_layout_loads_and_uses_its_noise_input(tmp_path, image):
    save_file(drunet_state(), str(tmp_path / "drunet.safetensors"))
    den = open_denoiser(str(tmp_path / "drunet.safetensors"), device="cpu")
    assert den.multiple == 8 and den.model_name == "drunet"
    low, high = den.denoise(image, 5.0), den.denoise(image, 50.0)
    assert low.shape == image.shape and np.isfinite(low).all()
    assert np.abs(low - high).max() > 1e-4  # the noise-level map reaches the network
    auto = den.denoise(image, None)  # Auto sends a per-pixel level map instead of one number
    assert auto.shape == image.shape and np.isfinite(auto).all()


def test_ffdnet_layout_loads_and_uses_its_noise_input(tmp_path, image):
    """KAIR FFDNet: the DnCNN key layout on pixel-unshuffled input + a noise map (13 -> 12 channels)."""
    g = torch.Generator().manual_seed(1)
    sd, cin = {}, 13
    for i, cout in enumerate((16, 16, 12)):
        sd[f"model.{2 * i}.weight"], sd[f"model.{2 * i}.bias"] = _w(g, cout, cin, 3, 3, std=0.1), _w(g, cout)
        cin = cout
    torch.save(sd, tmp_path / "ffdnet_color.pth")
    den = open_denoiser(str(tmp_path / "ffdnet_color.pth"), device="cpu")
    assert den.multiple == 2
    low, high = den.denoise(image, 5.0), den.denoise(image, 50.0)
    assert low.shape == image.shape and np.abs(low - high).max() > 1e-4


def test_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    torch.save({"model.0.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ForeignModelError, match="contains code, not only weights; it was not loaded"):
        read_state_dict(tmp_path / "evil.pth")
    with pytest.raises(ForeignModelError, match="it was not loaded"):
        import_foreign(tmp_path / "evil.pth", "evil")
    assert not marker.exists()
    assert "evil" not in foreign_cards()


@pytest.mark.parametrize("state,match", [
    ({"conv_first.weight": torch.zeros(8, 3, 3, 3), "upconv1.weight": torch.zeros(8, 8, 3, 3),
      "conv_last.weight": torch.zeros(3, 8, 3, 3)}, "upscaling"),  # ESRGAN-style x4
    (dncnn_state() | {"model.8.weight": torch.zeros(12, 16, 3, 3), "model.8.bias": torch.zeros(12)},
     "pixel-shuffle upscaler"),
    ({"encoder.weight": torch.zeros(8, 3, 3, 3)}, "not recognised"),
    ({"model.0.weight": torch.zeros(16, 3, 3, 3), "model.0.bias": torch.zeros(16), "model.2.weight":
      torch.zeros(3, 8, 3, 3), "model.2.bias": torch.zeros(3)}, "do not fit"),  # shapes that do not chain
])
def test_unusable_models_are_refused_clearly(tmp_path, state, match):
    save_file(state, str(tmp_path / "m.safetensors"))
    with pytest.raises(ForeignModelError, match=match) as exc:
        load_foreign(str(tmp_path / "m.safetensors"))
    assert "m.safetensors" in str(exc.value)


def test_not_a_model_file(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"garbage")
    with pytest.raises(ForeignModelError, match="cannot read"):
        read_state_dict(tmp_path / "x.pth")
    with pytest.raises(ForeignModelError, match="unsupported model file type"):
        read_state_dict(pathlib.Path(__file__))


def test_imported_model_is_listed_and_runs_a_folder_job(tmp_path, capsys):
    from PIL import Image

    from denoiser.cli.models_cmd import _list
    from denoiser.core.batch.runner import BatchOptions, run_batch
    from denoiser.core.io.photo import load_photo

    torch.save(drunet_state(seed=3), tmp_path / "kair_drunet.pth")
    src = tmp_path / "kair_drunet.pth"
    before = src.read_bytes()
    import_foreign(src, "my drunet")
    assert src.read_bytes() == before  # the original is never touched
    assert foreign_cards()["my drunet"]["architecture"] == "drunet"
    _list(False)
    assert any(ln.startswith("my drunet") and "drunet" in ln for ln in capsys.readouterr().out.splitlines())
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((30, 40, 3), 120, np.uint8)).save(folder / "a.png")
    result = run_batch(BatchOptions(folder, tmp_path / "out", model="my drunet", strength=15.0))
    assert result.ok and result.done[0].model == "my drunet"
    assert b'pdn:Model="my drunet"' in load_photo(result.done[0].output).xmp
    with pytest.raises(ForeignModelError, match="already exists"):
        import_foreign(src, "My DRUNet")
    from denoiser.cli import main

    assert main(["models", "delete", "my drunet"]) == 0
    assert "my drunet" not in foreign_cards() and src.is_file()


def test_models_import_cli_takes_a_pth_and_its_nominal_level(tmp_path, capsys):
    from denoiser.cli import main

    torch.save(dncnn_state(), tmp_path / "dncnn_color_blind.pth")
    assert main(["models", "import", str(tmp_path / "dncnn_color_blind.pth"), "--nominal", "15"]) == 0
    assert foreign_cards()["dncnn_color_blind"]["nominal_sigma"] == 15
    assert main(["models", "list"]) == 0
    assert "dncnn (strength by blending, full at 15)" in capsys.readouterr().out
    (tmp_path / "bad.pth").write_bytes(b"junk")
    assert main(["models", "import", str(tmp_path / "bad.pth")]) == 1
    assert "bad.pth" in capsys.readouterr().err
