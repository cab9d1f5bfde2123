#!/bin/bash
# Build the one-folder bundle dist/photo-denoiser/ and its archive dist/photo-denoiser-<version>-linux-<arch>.tar.zst,
# then print the bundle's size (unpacked, compressed, what dominates) and start-up time against the unbundled app.
#
#   packaging/build.sh                 # from the repository root, with the project's virtualenv active
#   options (environment): PYTHON=python  NICE=10  ARCHIVE=zst|xz|gz  ZSTD_LEVEL=10  SKIP_STARTUP=1  CLEAN=1
#                          DENOISER_BUNDLE_MODELS=DIR (models to ship instead of resources/models)
# Needs: pip install pyinstaller (6.x); tar with zstd (or xz/gzip); binutils' strip.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python}
NICE=${NICE:-10}
NAME=photo-denoiser
DIST=$ROOT/dist
BUNDLE=$DIST/$NAME
VERSION=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open("denoiser/__init__.py").read()).group(1))')
ARCH=$(uname -m)

ARCHIVE=${ARCHIVE:-}
if [ -z "$ARCHIVE" ]; then
    if command -v zstd >/dev/null; then ARCHIVE=zst; elif command -v xz >/dev/null; then ARCHIVE=xz; else ARCHIVE=gz; fi
fi

"$PYTHON" -c 'import PyInstaller' 2>/dev/null || { echo "build.sh: PyInstaller is missing: pip install 'pyinstaller>=6.5'" >&2; exit 1; }
models_dir=${DENOISER_BUNDLE_MODELS:-$ROOT/resources/models}
if ! compgen -G "$models_dir/*.safetensors" >/dev/null; then
    echo "build.sh: WARNING: no model in $models_dir; the bundle will have no default model" >&2
fi

echo "== PyInstaller ($("$PYTHON" -m PyInstaller --version)), niced by $NICE"
t0=$(date +%s)
rm -rf "$BUNDLE"
# build/pyinstaller keeps PyInstaller's analysis cache: a rebuild with unchanged imports takes ~1 min, not ~5+.
clean=(); [ "${CLEAN:-0}" = 1 ] && clean=(--clean)
nice -n "$NICE" "$PYTHON" -m PyInstaller --noconfirm --log-level WARN "${clean[@]}" \
    --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" "$ROOT/packaging/photo-denoiser.spec"
# Desktop integration travels with the bundle: unpack, then ./install.sh.
cp packaging/linux/install.sh packaging/linux/uninstall.sh \
   packaging/linux/io.github.photodenoiser.Denoiser.desktop \
   packaging/linux/io.github.photodenoiser.Denoiser.metainfo.xml "$BUNDLE/"
t1=$(date +%s)
echo "   built $BUNDLE in $((t1 - t0)) s"

echo "== Archive ($ARCHIVE)"
ARCHIVE_PATH=$DIST/$NAME-$VERSION-linux-$ARCH.tar.$ARCHIVE
rm -f "$ARCHIVE_PATH"
case "$ARCHIVE" in
    zst) tar -C "$DIST" -cf - "$NAME" | nice -n "$NICE" zstd -q -${ZSTD_LEVEL:-10} -T0 -o "$ARCHIVE_PATH" ;;
    xz)  tar -C "$DIST" -cf - "$NAME" | nice -n "$NICE" xz -6 -T0 > "$ARCHIVE_PATH" ;;
    gz)  tar -C "$DIST" -cf - "$NAME" | nice -n "$NICE" gzip -6 > "$ARCHIVE_PATH" ;;
    *) echo "build.sh: ARCHIVE must be zst, xz or gz" >&2; exit 2 ;;
esac
t2=$(date +%s)
echo "   wrote $ARCHIVE_PATH in $((t2 - t1)) s"

mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
unpacked=$(du -sb "$BUNDLE" | cut -f1)
compressed=$(stat -c %s "$ARCHIVE_PATH")
echo "== Size"
echo "   unpacked:   $(mib "$unpacked")  ($unpacked bytes, $(find "$BUNDLE" -type f | wc -l) files)   goal <= 1 GB"
echo "   compressed: $(mib "$compressed")  ($compressed bytes, $(basename "$ARCHIVE_PATH"))   goal <= 350 MB"
echo "   what dominates (largest folders and files inside the bundle):"
(cd "$BUNDLE/_internal" && du -ab --max-depth=2 . | sort -rn | awk 'NR > 1 && NR <= 15 { printf "     %5.0f MiB  %s\n", $1 / 1048576, substr($2, 3) }')

if [ "${SKIP_STARTUP:-0}" != 1 ]; then
    echo "== Start-up"
    if "$PYTHON" -c 'import denoiser.gui.app' 2>/dev/null; then
        "$PYTHON" packaging/startup_time.py --bundle "$BUNDLE/$NAME" --runs 3
    else
        echo "   skipped: denoiser.gui.app is not importable here"
    fi
fi
echo "== Done: $BUNDLE and $ARCHIVE_PATH"
