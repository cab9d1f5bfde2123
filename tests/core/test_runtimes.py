"""core.runtimes: the ONNX header reader against the onnx package, and damaged files."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from denoiser.core.runtimes import OnnxHeaderError, onnx_header


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x, sigma):
            return self.conv(x) * sigma.mean()

    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes
        torch.onnx.export(Net(), (torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 4, 4)), str(path),
                          input_names=["x", "sigma"], output_names=["y"], opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    for key, value in (("kind", "test"), ("source_sha256", "ab" * 32), ("note", "ünïcode")):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def test_the_header_reader_agrees_with_the_onnx_package(model_file):
    import onnx

    model = onnx.load(str(model_file))
    meta, inputs = onnx_header(model_file)
    assert meta == {p.key: p.value for p in model.metadata_props} and meta["note"] == "ünïcode"
    assert inputs == [i.name for i in model.graph.input] == ["x", "sigma"]


def test_damaged_files_are_refused_by_name(model_file, tmp_path):
    data = model_file.read_bytes()
    cases = {"empty.onnx": b"", "cut.onnx": data[:len(data) // 2], "noise.onnx":
             np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "text.onnx": b"not a model"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(OnnxHeaderError, match=f"{name}: not a readable ONNX model"):
            onnx_header(tmp_path / name)
    with pytest.raises(OnnxHeaderError, match="absent.onnx: unreadable"):
        onnx_header(tmp_path / "absent.onnx")


def test_a_file_too_big_to_be_a_network_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from denoiser.core import runtimes

    big = tmp_path / "big.onnx"
    with big.open("wb") as f:
        f.truncate(runtimes.MAX_ONNX_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(type(big), "read_bytes", lambda self: pytest.fail("read a file over the bound"))
    with pytest.raises(OnnxHeaderError, match="big.onnx: 1.0 GiB, larger than any network here"):
        onnx_header(big)
