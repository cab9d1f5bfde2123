#!/bin/sh
# One-shot GPU training for a short device lease (see README, "Training the default model").
# Prepare here (CPU):  denoiser pack --data ../shared/datasets/train/CBSD432 --data ../shared/datasets/train/SunHays80 \
#                        --data ../shared/datasets/train/photos --out runs/pack.npz   (then carry runs/pack.npz)
# On the device:       sh resources/train/gpu_oneshot.sh runs/pack.npz "$OUT" 8
# Continues from the shipped weights when they exist. Writes $OUT/gpu.safetensors (+ .json card) and $OUT/log.txt.
# Overrides (the test suite runs this very script on the CPU with them): PYTHON (python3), ONESHOT_DEVICE (cuda),
# ONESHOT_CONFIG (resources/train/gpu.json), ONESHOT_STEPS (a step budget), ONESHOT_INIT (weights; "" = from scratch).
set -eu
PACK=${1:?pack file}; OUT=${2:?output folder}; MINUTES=${3:-8}
PYTHON=${PYTHON:-python3}
DEVICE=${ONESHOT_DEVICE:-cuda}
CONFIG=${ONESHOT_CONFIG:-resources/train/gpu.json}
INIT=${ONESHOT_INIT-resources/models/default.safetensors}
set -- train --config "$CONFIG" --pack "$PACK" --out "$OUT/run" --minutes "$MINUTES" --device "$DEVICE" --name gpu
if [ -n "$INIT" ] && [ -f "$INIT" ]; then set -- "$@" --init "$INIT"; fi
if [ -n "${ONESHOT_STEPS:-}" ]; then set -- "$@" --steps "$ONESHOT_STEPS"; fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/log.txt" 2>&1 || true
# only the core is needed there (no Qt): call the train command module directly
STATUS=0
"$PYTHON" -c "import sys; from denoiser.cli import train_cmd; import argparse; \
p = argparse.ArgumentParser(); s = p.add_subparsers(); train_cmd.add_parser(s); \
a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))" "$@" >> "$OUT/log.txt" 2>&1 || STATUS=$?
cp "$OUT/run/gpu.safetensors" "$OUT/run/gpu.json" "$OUT/" 2>/dev/null || true
tail -5 "$OUT/log.txt"
exit $STATUS
