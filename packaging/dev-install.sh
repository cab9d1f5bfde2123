#!/bin/sh
# Installs everything the project needs on Debian/Ubuntu (system libraries for Qt, a virtualenv with the
# CPU build of PyTorch and the app in editable mode, plus test tools). Safe to run again.
#   sh packaging/dev-install.sh            # then: .venv/bin/denoiser-gui  or  .venv/bin/denoiser denoise IMG -o OUT
set -eu
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev libgl1 libegl1 \
        libfontconfig1 libglib2.0-0 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
        libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 \
        desktop-file-utils appstream zstd binutils libimage-exiftool-perl darktable rawtherapee xvfb openbox >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to a CPU build in pyproject.toml; for NVIDIA GPUs see the README ("CUDA").
.venv/bin/python -m pip install -q -e ".[test]"
echo "Installed. Open the app: .venv/bin/denoiser-gui   Clean a photo: .venv/bin/denoiser denoise IMG -o OUT"
