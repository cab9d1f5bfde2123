"""Auto's estimator from its shipped ONNX export (core.noise.learned): current, the same map, refused when stale."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from denoiser.core.noise import learned

pytest.importorskip("onnx")


def test_the_shipped_export_holds_the_shipped_weights():
    # fails when the estimator is retrained without `python packaging/export_estimator.py`
    assert learned.shipped_onnx_problem() is None


def test_the_export_reads_the_same_map_as_the_weights():
    from denoiser.core.runtimes import available

    net = learned.shipped_estimator()
    assert net is not None
    img = np.random.default_rng(5).random((150, 236, 3), dtype=np.float32) * 0.5 + 0.2
    ref = learned.predict_map(net, img, tile=256)
    for runtime in available():
        run = learned.fast_runner(net, runtime, onnx_file=learned.shipped_onnx_path())
        assert run is not None
        np.testing.assert_allclose(learned.predict_map(net, img, tile=256, run=run), ref, rtol=1e-4, atol=1e-4)


def test_a_stale_or_damaged_export_is_named_and_auto_exports_the_weights_itself(tmp_path, monkeypatch, caplog):
    models = tmp_path / "res" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("DENOISER_RESOURCES", str(tmp_path / "res"))
    torch.manual_seed(7)
    other = learned.NoiseMapNet()
    learned.save_estimator(other, models / "estimator.safetensors", {})
    assert "estimator.onnx is not installed" in learned.shipped_onnx_problem()
    shutil.copy(learned.__file__, models / "estimator.onnx")  # not a model at all
    assert "not a readable ONNX model" in learned.shipped_onnx_problem()
    learned.export_shipped_onnx(models / "estimator.safetensors", models / "estimator.onnx")
    assert learned.shipped_onnx_problem() is None
    torch.manual_seed(8)
    learned.save_estimator(learned.NoiseMapNet(), models / "estimator.safetensors", {})  # retrained, not re-exported
    assert "made from other weights" in learned.shipped_onnx_problem()
    run = learned.shipped_runner()
    net = learned.shipped_estimator()
    assert run is not None and net is not None
    img = np.random.default_rng(6).random((96, 128, 3), dtype=np.float32)
    np.testing.assert_allclose(learned.predict_map(net, img, run=run), learned.predict_map(net, img),
                               rtol=1e-4, atol=1e-4)  # the new weights' map, not the stale export's
    assert "made from other weights" in caplog.text
