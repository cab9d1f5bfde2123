"""INT8 builds (core.inference.quantized): built deterministically, close to fp32, refused when they do not
belong to the model, and the shipped one belongs to the shipped model."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from denoiser.core.files import file_sha256
from denoiser.core.inference.engine import Denoiser, open_denoiser
from denoiser.core.inference.quantized import Int8Error, build_int8, build_problem, int8_path


def smooth_crops(n: int, side: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:side, 0:side] / side
    return [np.clip(np.stack([np.sin(6 * xx * (i + 1)) * 0.3 + 0.5, yy, xx * yy], -1)
                    + rng.normal(0, 0.05, (side, side, 3)), 0, 1).astype(np.float32) for i in range(n)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from denoiser.core.model.file import ModelCard, save_model
    from tests.conftest import make_tiny_model

    folder = tmp_path_factory.mktemp("int8")
    model = make_tiny_model(3)
    path = folder / "tiny.safetensors"
    save_model(path, model, ModelCard(name="tiny", config=model.config), half=False)
    build_int8(path, smooth_crops(6), int8_path(path))
    first = file_sha256(int8_path(path))
    build_int8(path, smooth_crops(6), folder / "again.int8.onnx")
    return path, first, folder


def test_build_is_deterministic(built):
    path, first, folder = built
    assert file_sha256(folder / "again.int8.onnx") == first


def test_int8_engine_is_close_to_fp32_and_follows_the_level_map(built):
    path, _, _ = built
    fp32 = Denoiser.from_file(path, device="cpu")
    int8 = Denoiser.from_file(path, device="cpu", precision="int8")
    assert int8.int8 is not None and fp32.int8 is None
    noisy = smooth_crops(1, 96)[0] + np.random.default_rng(1).normal(0, 0.1, (96, 96, 3)).astype(np.float32)
    a, b = fp32.denoise(noisy, 25.0), int8.denoise(noisy, 25.0)
    assert np.abs(a - b).mean() < 0.01 and np.abs(a - b).max() < 0.1
    assert np.abs(a - noisy.clip(0, 1)).mean() > 5 * np.abs(a - b).mean()  # the model does change the photo
    level = int8.auto_strength(noisy)  # Auto's map travels as a 4th channel to the INT8 network too
    assert np.abs(fp32.denoise(noisy, level) - int8.denoise(noisy, level)).mean() < 0.01


def test_a_build_of_other_weights_is_refused(built, tmp_path):
    from denoiser.core.model.file import ModelCard, save_model
    from tests.conftest import make_tiny_model

    path, _, folder = built
    other = tmp_path / "other.safetensors"
    model = make_tiny_model(4)
    save_model(other, model, ModelCard(name="other", config=model.config), half=False)
    assert build_problem(other) == "it has no INT8 build (other.int8.onnx)"
    int8_path(other).write_bytes(int8_path(path).read_bytes())  # a stale build: what the window asks about too
    with pytest.raises(Int8Error, match="built from other weights"):
        Denoiser.from_file(other, device="cpu", precision="int8")
    assert "built from other weights than other.safetensors" in build_problem(other)
    assert build_problem(path) is None


def test_missing_or_damaged_builds_and_foreign_models_are_refused(built, tmp_path):
    from denoiser.core.model.file import ModelCard, save_model
    from tests.conftest import make_tiny_model

    model = make_tiny_model(5)
    path = tmp_path / "plain.safetensors"
    save_model(path, model, ModelCard(name="plain", config=model.config), half=False)
    with pytest.raises(Int8Error, match="no INT8 build.*--precision fp32"):
        Denoiser.from_file(path, device="cpu", precision="int8")
    int8_path(path).write_bytes(b"not onnx at all")
    with pytest.raises(Int8Error, match="not a readable ONNX model"):
        Denoiser.from_file(path, device="cpu", precision="int8")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, int8"):
        Denoiser.from_file(path, device="cpu", precision="int4")


def test_the_shipped_int8_build_belongs_to_the_shipped_model():
    import onnx

    from denoiser.core.model.registry import find_model

    entry = find_model(None)
    build = int8_path(entry.path)
    if not build.is_file():
        pytest.skip("no INT8 build shipped")
    meta = {p.key: p.value for p in onnx.load(str(build), load_external_data=False).metadata_props}
    assert meta["source_sha256"] == file_sha256(entry.path), "rebuild it: python packaging/build_int8.py"
    assert open_denoiser(None, "cpu", precision="int8").int8 is not None


def test_cli_denoise_with_int8_matches_the_engine_and_refuses_a_model_without_a_build(built, tmp_path, capsys):
    from PIL import Image

    from denoiser.cli import main
    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.exit_codes import ExitCode

    path, _, _ = built
    img = (smooth_crops(1, 80)[0] * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert main(["denoise", str(tmp_path / "in.png"), "-o", str(out), "--model", str(path), "--strength", "20",
                 "--precision", "int8", "--device", "cpu"]) == ExitCode.OK
    expected = Denoiser.from_file(path, device="cpu", precision="int8").denoise(img.astype(np.float32) / 255, 20.0)
    assert np.abs(load_eval_image(out) - expected).max() <= 1.01 / 255  # the saved 8 bits of the INT8 result
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(path.read_bytes())
    code = main(["denoise", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.png"), "--model", str(plain),
                 "--precision", "int8"])
    assert code == ExitCode.USAGE and not (tmp_path / "x.png").exists()
    assert "no INT8 build" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_auto_estimator_through_each_runtime_reads_the_same_map_as_torch(runtime):
    import torch

    from denoiser.core.noise.learned import NoiseMapNet, fast_runner, predict_map
    from denoiser.core.runtimes import available

    if runtime not in available():
        pytest.skip(f"needs {runtime}")
    torch.manual_seed(0)
    net = NoiseMapNet().eval()
    img = np.random.default_rng(3).random((200, 264, 3), dtype=np.float32)
    run = fast_runner(net, runtime)
    assert run is not None
    # tiles of three sizes: the compiled network takes every height and width
    ref, fast = predict_map(net, img, tile=320), predict_map(net, img, tile=320, run=run)
    assert ref.shape == fast.shape == (100, 132)
    assert np.abs(ref - fast).max() < 1e-3 * max(1.0, float(np.abs(ref).max()))
    assert ref.std() > 0  # a map that varies, so agreement is not trivial


def test_auto_prefers_openvino_for_its_estimator_and_falls_back_to_onnx_runtime(monkeypatch):
    from denoiser.core import runtimes
    from denoiser.core.noise.learned import NoiseMapNet, fast_runner

    made: list[str] = []
    real = runtimes.Network

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, model, threads, runtime):
            made.append(runtime)
            super().__init__(model, threads, runtime)

    monkeypatch.setattr(runtimes, "Network", Recording)
    found = runtimes.available()
    assert fast_runner(NoiseMapNet()) is not None and made == found[:1]
    monkeypatch.setattr(runtimes, "available", lambda: [r for r in found if r == "onnxruntime"])
    assert (fast_runner(NoiseMapNet()) is not None) == ("onnxruntime" in found)
    assert made[1:] == [r for r in found if r == "onnxruntime"]
    monkeypatch.setattr(runtimes, "available", lambda: [])
    assert fast_runner(NoiseMapNet()) is None  # Auto then runs the estimator through torch


def test_batch_runs_the_int8_build_and_refuses_a_model_without_one(built, tmp_path, capsys):
    import cv2

    from denoiser.cli import main
    from denoiser.core.evaluation.evaluate import load_eval_image
    from denoiser.exit_codes import ExitCode

    path, _, _ = built
    src = tmp_path / "in"
    src.mkdir()
    img = np.round(smooth_crops(1, 80)[0] * 65535) / 65535  # 16-bit: the output keeps the precisions apart
    cv2.imwrite(str(src / "a.png"), (img[..., ::-1] * 65535).astype(np.uint16))
    common = ["--strength", "20", "--device", "cpu", "--format", "png"]
    assert main(["batch", str(src), "-o", str(tmp_path / "int8"), "--model", str(path), "--precision", "int8",
                 *common]) == ExitCode.OK
    int8 = Denoiser.from_file(path, device="cpu", precision="int8").denoise(img.astype(np.float32), 20.0)
    fp32 = Denoiser.from_file(path, device="cpu").denoise(img.astype(np.float32), 20.0)
    got = load_eval_image(tmp_path / "int8" / "a-denoised.png")
    step = 1.01 / 65535
    assert np.abs(got - int8).max() <= step < np.abs(got - fp32).max()  # the INT8 build ran, not the weights
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(path.read_bytes())
    code = main(["batch", str(src), "-o", str(tmp_path / "x"), "--model", str(plain), "--precision", "int8",
                 *common])
    assert code == ExitCode.USAGE and not (tmp_path / "x" / "a-denoised.png").exists()
    assert "no INT8 build" in capsys.readouterr().err


def test_deeper_additions_run_in_int8_and_the_first_level_and_output_stay_fp32(built):
    import onnx

    path, _, _ = built
    graph = onnx.load(str(int8_path(path))).graph
    producer = {out: n for n in graph.node for out in n.output}

    def quantised_inputs(node) -> bool:
        return all(producer[i].op_type == "DequantizeLinear" for i in node.input if i in producer)

    adds = {n.name: n for n in graph.node if n.op_type == "Add"}
    output_add = producer[graph.output[0].name]
    assert output_add.op_type == "Add" and not quantised_inputs(output_add)  # the residual x + correction in fp32
    level0 = [n for name, n in adds.items() if "/enc.0/" in name or "/dec.0/" in name]
    assert level0 and not any(quantised_inputs(n) for n in level0)
    deeper = [n for name, n in adds.items() if "/mid/" in name or "/enc.1/" in name]
    assert deeper and all(quantised_inputs(n) for n in deeper)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert not quantised_inputs(next(n for n in convs if n.name.startswith("/head/")))
    assert quantised_inputs(next(n for n in convs if n.name.startswith("/mid/")))


def test_openvino_and_onnx_runtime_run_the_same_build_alike(built):
    import torch

    from denoiser.core.inference.int8_runtime import available
    from denoiser.core.inference.quantized import Int8Network

    path, _, _ = built
    if available() != ["openvino", "onnxruntime"]:
        pytest.skip("needs both INT8 runtimes")
    x = torch.from_numpy(smooth_crops(1, 64)[0]).permute(2, 0, 1)[None].contiguous()
    nets = {r: Int8Network(int8_path(path), path, threads=1, runtime=r) for r in ("openvino", "onnxruntime")}
    assert {r: n.runtime.name for r, n in nets.items()} == {"openvino": "openvino", "onnxruntime": "onnxruntime"}
    a, b = (nets[r](x, 25.0) for r in ("openvino", "onnxruntime"))
    assert a.shape == b.shape == x.shape
    assert (a - b).abs().mean() < 2e-3 and (a - x).abs().mean() > 10 * (a - b).abs().mean()


def test_the_int8_runtime_is_chosen_by_preference_or_by_name(monkeypatch):
    from denoiser.core.inference import int8_runtime as rt

    monkeypatch.delenv(rt.ENV, raising=False)
    assert rt.choose() == rt.available()[0]
    monkeypatch.setenv(rt.ENV, "tensorrt")
    with pytest.raises(rt.RuntimeUnavailable, match="DENOISER_INT8_RUNTIME='tensorrt'"):
        rt.choose()
    monkeypatch.setattr(rt, "available", lambda: ["onnxruntime"])
    monkeypatch.setenv(rt.ENV, "openvino")
    with pytest.raises(rt.RuntimeUnavailable, match="pip install openvino"):
        rt.choose()
    monkeypatch.delenv(rt.ENV)
    assert rt.choose() == "onnxruntime"
    monkeypatch.setattr(rt, "available", lambda: [])
    with pytest.raises(rt.RuntimeUnavailable, match="needs OpenVINO or ONNX Runtime"):
        rt.choose()


def test_openvino_networks_share_one_core_that_outlives_them(built):
    """One OpenVINO Core per process, never released: releasing one unloads its CPU plugin, after which a later
    SIGINT in the same process (the CLI's Ctrl-C) crashed the interpreter (seen in the test suite's signal test)."""
    import gc

    from denoiser.core import runtimes as rt
    from denoiser.core.inference.int8_runtime import NetworkRuntime
    from denoiser.core.noise.learned import NoiseMapNet, fast_runner

    if "openvino" not in rt.available():
        pytest.skip("needs OpenVINO")
    path, _, _ = built
    first = NetworkRuntime(int8_path(path), 1, "openvino")
    core = rt.openvino_core()
    estimator = fast_runner(NoiseMapNet())  # Auto's estimator compiles on the same Core
    del first, estimator
    gc.collect()
    second = NetworkRuntime(int8_path(path), 1, "openvino")
    assert len(rt._CORE) == 1 and rt._CORE[0] is core and rt.openvino_core() is core
    assert second.run(np.zeros((1, 3, 32, 32), np.float32), np.full((1, 1, 16, 16), 10, np.float32)).shape == \
        (1, 3, 32, 32)
