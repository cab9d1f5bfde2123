#!/bin/sh
# One-shot GPU training for a short device lease (see README, "Training the default model").
# Prepare here (CPU):  denoiser pack --data ../shared/datasets/train/CBSD432 --data ../shared/datasets/train/SunHays80 \
#                        --data ../shared/datasets/train/photos --out runs/pack.npz   (then carry runs/pack.npz)
# On the device:       sh resources/train/gpu_oneshot.sh runs/pack.npz "$OUT" 8
# Continues from the shipped weights when they exist. Writes $OUT/gpu.safetensors (+ .json card) and $OUT/log.txt.
set -eu
PACK=${1:?pack file}; OUT=${2:?output folder}; MINUTES=${3:-8}
INIT=""
[ -f resources/models/default.safetensors ] && INIT="--init resources/models/default.safetensors"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/log.txt" 2>&1 || true
# only the core is needed there (no Qt): call the train command module directly
python3 -c "import sys; from denoiser.cli import train_cmd; import argparse; \
p = argparse.ArgumentParser(); s = p.add_subparsers(); train_cmd.add_parser(s); \
a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))" train --config resources/train/gpu.json --pack "$PACK" \
  --out "$OUT/run" --minutes "$MINUTES" --device cuda --name gpu $INIT >> "$OUT/log.txt" 2>&1 || STATUS=$?
cp "$OUT/run/gpu.safetensors" "$OUT/run/gpu.json" "$OUT/" 2>/dev/null || true
tail -5 "$OUT/log.txt"
exit ${STATUS:-0}
