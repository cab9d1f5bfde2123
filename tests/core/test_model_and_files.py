import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from denoiser.core.model.file import ModelCard, ModelFileError, load_model, read_card, save_model
from denoiser.core.model.network import (
    ModelConfig,
    build_model,
    gflops_per_megapixel,
    grown_blocks,
    load_grown,
    pad_to_multiple,
)
from tests.conftest import TINY, make_tiny_model


def test_any_input_size_after_padding():
    model = make_tiny_model()
    x = torch.rand(1, 3, 37, 53)
    padded, (h, w) = pad_to_multiple(x, model.config.size_multiple)
    assert padded.shape[-2] % model.config.size_multiple == 0 and (h, w) == (37, 53)
    with torch.inference_mode():
        out = model(padded, torch.tensor([10.0]))
    assert out.shape == padded.shape


def test_unpadded_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="multiple of"):
        make_tiny_model()(torch.rand(1, 3, 30, 30), torch.tensor([5.0]))


def test_noise_level_input_changes_output():
    model = make_tiny_model()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        a, b = model(x, torch.tensor([5.0])), model(x, torch.tensor([50.0]))
    assert (a - b).abs().max() > 1e-4


def test_fresh_model_is_identity():
    """The residual tail starts at zero, so an untrained model returns its input."""
    model = build_model(ModelConfig(**TINY))
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(model(x, torch.tensor([25.0])), x)


@pytest.mark.parametrize("bad", [{"widths": [8]}, {"block": "magic"}, {"arch": "resnet"}, {"in_channels": 2},
                                 {"enc_blocks": [1, 1]}, {"surprise": 1}])
def test_config_validation(bad):
    d = ModelConfig(**TINY).to_dict() | bad
    with pytest.raises(ValueError):
        ModelConfig.from_dict(d)


def test_save_load_round_trip(tmp_path):
    model = make_tiny_model(3)
    path = tmp_path / "m.safetensors"
    save_model(path, model, ModelCard(name="m", config=model.config, metrics={"psnr": 30.0}), half=False)
    loaded, card = load_model(path)
    assert card.metrics == {"psnr": 30.0} and card.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert not list(tmp_path.glob("*.tmp"))


def test_saved_model_files_get_the_usual_permissions(tmp_path):
    """Like any file the user writes (umask), not mkstemp's private 0600: a model saved by a packaging or admin
    step must stay readable by the other accounts that run the app."""
    model = make_tiny_model(3)
    path = tmp_path / "m.safetensors"
    mask = os.umask(0o022)
    try:
        save_model(path, model, ModelCard(name="m", config=model.config))
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644


def test_embedded_card_used_when_sidecar_missing(tmp_path):
    model = make_tiny_model()
    path = tmp_path / "m.safetensors"
    save_model(path, model, ModelCard(name="embedded", config=model.config))
    path.with_suffix(".json").unlink()
    assert read_card(path).name == "embedded"


def test_wrong_architecture_is_rejected(tmp_path):
    model = make_tiny_model()
    path = tmp_path / "m.safetensors"
    other = ModelConfig(widths=(8, 16, 32), enc_blocks=(1, 1), dec_blocks=(1, 1), mid_blocks=1)
    save_model(path, model, ModelCard(name="m", config=other))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)


def test_garbage_and_pickle_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    bad.with_suffix(".json").write_text(json.dumps(ModelCard(name="b", config=ModelConfig(**TINY)).to_dict()))
    with pytest.raises(ModelFileError):
        load_model(bad)
    pickled = tmp_path / "p.safetensors"
    torch.save({"x": torch.zeros(1)}, pickled)  # a pickle in disguise must never be executed
    with pytest.raises(ModelFileError):
        load_model(pickled)


def test_nan_weights_are_rejected(tmp_path):
    model = make_tiny_model()
    path = tmp_path / "n.safetensors"
    save_model(path, model, ModelCard(name="n", config=model.config), half=False)
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["head.bias"][0] = float("nan")
    save_file(tensors, str(path), metadata={})
    with pytest.raises(ModelFileError, match="NaN"):
        load_model(path)


def test_gflops_counts_grow_with_width():
    small = gflops_per_megapixel(ModelConfig(**TINY))
    big = gflops_per_megapixel(ModelConfig(widths=(16, 32), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1))
    assert 3.0 < big / small < 4.5  # ~4x for doubled width


@pytest.mark.parametrize("block", ["res", "naf"])
def test_grown_model_computes_what_the_old_one_did(block):
    old_cfg = ModelConfig(**(TINY | {"block": block}))
    torch.manual_seed(3)
    old = build_model(old_cfg).eval()
    with torch.no_grad():
        for p in old.parameters():
            p.normal_(0, 0.05)  # also the zero-initialised tail, so the old model is not the identity
    new_cfg = ModelConfig(**(TINY | {"block": block, "mid_blocks": 3, "dec_blocks": (2,)}))
    new = build_model(new_cfg).eval()
    assert load_grown(new, old.state_dict(), old_cfg) == ["mid.1", "mid.2", "dec.0.1"]
    x, s = torch.rand(1, 3, 32, 32), torch.tensor([20.0])
    with torch.no_grad():
        before, after = old(x, s), new(x, s)
        assert (before - x).abs().max() > 1e-3
        torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
        for p in new.mid[1].parameters():  # the new block is trainable, not frozen at zero
            assert p.requires_grad


@pytest.mark.parametrize("change, message", [
    ({"widths": (8, 24)}, "widths"),
    ({"mid_blocks": 0}, "removing"),
    ({"block": "naf"}, "block"),
])
def test_growth_that_would_change_the_function_is_refused(change, message):
    old_cfg = ModelConfig(**TINY)
    with pytest.raises(ValueError, match=message):
        grown_blocks(old_cfg, ModelConfig(**(TINY | change)))


def test_plain_blocks_cannot_grow():
    with pytest.raises(ValueError, match="identity"):
        grown_blocks(ModelConfig(**(TINY | {"block": "plain"})),
                     ModelConfig(**(TINY | {"block": "plain", "mid_blocks": 2})))
