"""The layering rule of DESIGN.md, made checkable: denoiser.core never imports Qt."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_core_imports_and_runs_without_pyside6(tmp_path):
    """Every core module imports, and a photo is loaded, denoised (Auto strength) and saved, with Qt blocked."""
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import denoiser.core\n"
        "for m in pkgutil.iter_modules(denoiser.core.__path__):\n"
        "    importlib.import_module('denoiser.core.' + m.name)\n"
        "import numpy as np, torch\n"
        "from PIL import Image\n"
        "from denoiser.core.inference.engine import Denoiser\n"
        "from denoiser.core.model.network import ModelConfig, build_model\n"
        "from denoiser.core.io.photo import load_photo, save_photo\n"
        "torch.manual_seed(0)\n"
        "model = build_model(ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1))\n"
        "with torch.no_grad():\n"
        "    [p.normal_(0, 0.05) for p in model.parameters()]\n"
        "rng = np.random.default_rng(0)\n"
        "src, dst = sys.argv[1] + '/in.png', sys.argv[1] + '/out.png'\n"
        "Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(src)\n"
        "photo = load_photo(src)\n"
        "out, sigma = Denoiser(model.eval(), 'cpu').denoise_photo(photo)\n"
        "save_photo(out, dst)\n"
        "changed = np.abs(np.asarray(Image.open(dst), float) - np.asarray(Image.open(src), float)).mean()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')]\n"
        "assert not bad, bad\n"
        "print('ok', float(sigma) > 0, changed > 1)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ok", "True", "True"], res.stdout + res.stderr


def test_import_linter_contracts():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.is_file():
        pytest.skip(f"lint-imports is not installed next to {sys.executable} (pip install import-linter)")
    res = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
