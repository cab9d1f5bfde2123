#!/bin/bash
# CI: build the bundle (packaging/build.sh), then smoke-test it as a user would get it:
#   1. the bundled CLI cleans a photo, and the result equals the unbundled CLI's output with the same model
#      (byte-equal is reported if so; pixel-equal is the requirement);
#   2. the bundled window, offscreen, opens a photo, denoises it, saves it and exits 0 (--smoke-test);
#   3. the bundle's install.sh / uninstall.sh work into a temporary HOME, and the installed .desktop validates.
# Exit status 0 only if all pass. Run from anywhere, with the project's virtualenv active.
#   options (environment): SKIP_BUILD=1 (test an existing dist/photo-denoiser), plus build.sh's options.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python}
BUNDLE=$ROOT/dist/photo-denoiser
EXE=$BUNDLE/photo-denoiser
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export QT_QPA_PLATFORM=offscreen DENOISER_DATA_DIR=$WORK/user-data
T_START=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - T_START )) s)"; }
fail() { echo "ci_bundle.sh: FAILED: $*" >&2; exit 1; }

# The shipped model: resources/models if it has one; otherwise (early in the project) a tiny seeded stand-in,
# so the bundle is still checked end to end.
if [ -z "${DENOISER_BUNDLE_MODELS:-}" ] && ! compgen -G "resources/models/*.safetensors" >/dev/null; then
    echo "WARNING: resources/models has no model; bundling a tiny seeded stand-in model for the smoke test"
    export DENOISER_BUNDLE_MODELS=$WORK/models
    "$PYTHON" - "$DENOISER_BUNDLE_MODELS" <<'EOF'
import sys
from pathlib import Path
import torch
from denoiser.core.model.file import ModelCard, save_model
from denoiser.core.model.network import ModelConfig, build_model
torch.manual_seed(0)
config = ModelConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1,), mid_blocks=1)
folder = Path(sys.argv[1]); folder.mkdir(parents=True)
save_model(folder / "default.safetensors", build_model(config), ModelCard(name="default", config=config,
           description="tiny stand-in for CI"))
EOF
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    step "Build"
    packaging/build.sh
fi
[ -x "$EXE" ] || fail "no bundle at $EXE"
MODEL=$(compgen -G "$BUNDLE/_internal/resources/models/*.safetensors" | head -n 1 || true)
[ -n "$MODEL" ] || fail "the bundle ships no model (resources/models/*.safetensors)"

step "Test photos"
"$PYTHON" - "$WORK" <<'EOF'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
y, x = np.mgrid[0:192, 0:256]
clean = np.stack([40 + x * 0.7, 60 + y * 0.8, 128 + 60 * np.sin(x / 15.0)], axis=-1)
clean[50:110, 70:170] = (220, 50, 40)
noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
Image.fromarray(noisy).save(f"{sys.argv[1]}/noisy.png")
Image.fromarray(noisy).save(f"{sys.argv[1]}/noisy.jpg", quality=92)
EOF

step "Bundled CLI"
"$EXE" --version
"$EXE" models || fail "the bundled 'models' command failed"
for ext in png jpg; do
    "$EXE" denoise "$WORK/noisy.$ext" -o "$WORK/bundled.$ext" || fail "bundled CLI could not denoise noisy.$ext"
    "$PYTHON" -m denoiser denoise "$WORK/noisy.$ext" -o "$WORK/unbundled.$ext" --model "$MODEL" || fail "unbundled CLI failed on noisy.$ext"
    if cmp -s "$WORK/bundled.$ext" "$WORK/unbundled.$ext"; then
        echo "   $ext: bundled output is BYTE-EQUAL to the unbundled CLI's"
    else
        "$PYTHON" - "$WORK/bundled.$ext" "$WORK/unbundled.$ext" <<'EOF' || fail "bundled and unbundled CLI outputs differ ($ext)"
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p)) for p in sys.argv[1:3])
if a.shape != b.shape or not np.array_equal(a, b):
    diff = np.abs(a.astype(int) - b.astype(int)).max() if a.shape == b.shape else "shape"
    sys.exit(f"   pixels differ: {a.shape} vs {b.shape}, max |diff| {diff}")
print("   bytes differ but PIXEL-EQUAL to the unbundled CLI's output")
EOF
    fi
done

step "Bundled window (--smoke-test, offscreen)"
"$EXE" --smoke-test "$WORK/noisy.png" "$WORK/window.png" || fail "the bundled window's smoke test exited $?"
[ -s "$WORK/window.png" ] || fail "the smoke test exited 0 but wrote no $WORK/window.png"
"$PYTHON" - "$WORK/window.png" "$WORK/bundled.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
window, cli = (np.asarray(Image.open(p)) for p in sys.argv[1:3])
assert window.shape == cli.shape, f"window output {window.shape} != input size {cli.shape}"
same = np.array_equal(window, cli)
print(f"   window output {window.shape[1]}x{window.shape[0]}: "
      + ("pixel-equal to the CLI's" if same else f"differs from the CLI's by max {np.abs(window.astype(int) - cli).max()}"
         " (the window may use other settings)"))
EOF

step "Desktop integration from the bundle (temporary HOME)"
FAKE_HOME=$WORK/home
mkdir -p "$FAKE_HOME"
HOME=$FAKE_HOME XDG_DATA_HOME= sh "$BUNDLE/install.sh" >/dev/null || fail "install.sh failed"
DESKTOP=$FAKE_HOME/.local/share/applications/io.github.photodenoiser.Denoiser.desktop
grep -q "^Exec=$EXE %F$" "$DESKTOP" || fail "installed desktop file does not launch $EXE"
if command -v desktop-file-validate >/dev/null; then desktop-file-validate "$DESKTOP" || fail "installed .desktop invalid"; fi
HOME=$FAKE_HOME XDG_DATA_HOME= sh "$BUNDLE/uninstall.sh" >/dev/null || fail "uninstall.sh failed"
[ -z "$(find "$FAKE_HOME" -mindepth 1 -print -quit)" ] || fail "uninstall.sh left files: $(find "$FAKE_HOME" -mindepth 1)"
echo "   install.sh + uninstall.sh: ok, HOME left as found"

step "All bundle checks passed"
