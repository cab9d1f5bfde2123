"""core.config.from_plain: the one reader of config dataclasses from JSON objects."""
from __future__ import annotations

import pytest

from denoiser.core.model.network import ModelConfig
from denoiser.core.noise import NoiseConfig
from denoiser.core.training.trainer import TrainConfig


def test_nested_configs_are_built_from_plain_objects() -> None:
    cfg = TrainConfig.from_dict({"model": {"widths": [8, 16], "enc_blocks": [1], "dec_blocks": [1]},
                                 "noise": {"sigma_max": 30.0}, "patch": 64, "val_crop": 64})
    assert isinstance(cfg.model, ModelConfig) and cfg.model.widths == (8, 16)
    assert isinstance(cfg.noise, NoiseConfig) and cfg.noise.sigma_max == 30.0
    assert cfg.noise.p_gaussian == NoiseConfig().p_gaussian  # an absent key keeps the field's default


@pytest.mark.parametrize("data, words", [
    ({"noise": {"sigma_mx": 30.0}}, "unknown training config 'noise' keys: ['sigma_mx']"),
    ({"noise": [1, 2]}, "training config 'noise' must be a JSON object, not list"),
    ({"noise": {"sigma_min": 40.0, "sigma_max": 30.0}}, "sigma_min <= sigma_max"),
    ("not an object", "training config must be a JSON object, not str"),
])
def test_a_bad_config_is_refused_by_name(data: object, words: str) -> None:
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(data)  # type: ignore[arg-type]
    assert words in str(err.value)


def test_noise_config_refuses_an_unknown_key_as_value_error() -> None:
    with pytest.raises(ValueError, match="unknown noise config keys: \\['p_gauss'\\]"):
        NoiseConfig.from_dict({"p_gauss": 1.0})


def test_trainer_refuses_an_unavailable_device(tmp_path) -> None:
    from PIL import Image

    from denoiser.core.training.trainer import Trainer

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    cfg = TrainConfig.from_dict({"model": {"widths": [8, 16], "enc_blocks": [1], "dec_blocks": [1]},
                                 "patch": 64, "val_crop": 64, "max_steps": 1})
    with pytest.raises(ValueError, match="not available|unknown device"):
        Trainer(cfg, [tmp_path], tmp_path / "out", device="cuda:7")
    with pytest.raises(ValueError, match="unknown device"):
        Trainer(cfg, [tmp_path], tmp_path / "out", device="gpu please")


def test_the_estimator_config_is_read_the_same_way() -> None:
    from denoiser.core.noise.learned import EstimatorConfig

    assert EstimatorConfig.from_dict({"widths": [8, 16, 24]}).widths == (8, 16, 24)
    assert EstimatorConfig.from_dict({}) == EstimatorConfig()
    with pytest.raises(ValueError, match="bad estimator widths \\(8, 16\\)"):
        EstimatorConfig.from_dict({"widths": [8, 16]})
    with pytest.raises(ValueError, match="unknown estimator config keys: \\['depth'\\]"):
        EstimatorConfig.from_dict({"depth": 3})
