"""Average the weights of models of one architecture (weight-space ensembling, "WiSE-FT": Wortsman et al.,
CVPR 2022): a model trained further from a start, averaged with that start, keeps most of what the further
training gained while losing less of what the start was good at. The shipped default v13 is the plain midpoint
of v11 and v11 trained a further 4,421 steps on resources/train/heavy.json (the weight 0.5 was not tuned).

    python packaging/average_weights.py --model resources/models/default.safetensors \
        --model runs/heavy/model.safetensors --out runs/avg/model.safetensors \
        [--weight 0.5 --weight 0.5] [--name default --version 13 --description TEXT]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from denoiser.core.model.file import ModelCard


def average(paths: list[Path], weights: list[float]) -> tuple[dict[str, torch.Tensor], list[ModelCard]]:
    """The weighted mean of the models' tensors and each model's card. Each file goes through the app's loader
    (card, shapes and finite values checked before use); the models must share one architecture."""
    from denoiser.core.model.file import load_model

    loaded = [load_model(p) for p in paths]
    cards = [card for _, card in loaded]
    if any(c.config != cards[0].config for c in cards[1:]):
        raise ValueError("the models differ in architecture; only models of one architecture can be averaged")
    states = [model.state_dict() for model, _ in loaded]
    return {k: sum((w * s[k] for w, s in zip(weights, states, strict=True)), torch.zeros_like(v))
            for k, v in states[0].items()}, cards


def main() -> None:
    from denoiser.core.model.file import save_model
    from denoiser.core.model.network import build_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="model file (two or more)")
    ap.add_argument("--weight", type=float, action="append", help="one per --model (default: equal)")
    ap.add_argument("--out", type=Path, required=True, help="new model file (.safetensors); never overwritten")
    ap.add_argument("--name", default="default")
    ap.add_argument("--version", default="1")
    ap.add_argument("--description", default="")
    args = ap.parse_args()
    weights = args.weight or [1 / len(args.model)] * len(args.model)
    if len(args.model) < 2 or len(weights) != len(args.model) or abs(sum(weights) - 1) > 1e-6 or min(weights) < 0:
        sys.exit("give two or more --model files and, if any, one --weight per model: non-negative, summing to 1")
    if args.out.exists() or args.out.suffix != ".safetensors":
        sys.exit(f"{args.out}: choose a new .safetensors path (an existing file is never overwritten)")
    try:
        state, sources = average(args.model, weights)
    except ValueError as exc:  # ModelFileError included
        sys.exit(str(exc))
    config = sources[0].config
    model = build_model(config)
    model.load_state_dict(state)
    training = {"averaged": [{"model": str(p), "weight": w, "name": c.name, "version": c.version,
                              "training": c.training} for p, w, c in zip(args.model, weights, sources, strict=True)]}
    new = ModelCard(name=args.name, config=config, version=args.version,
                    description=args.description, training=training, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_model(args.out, model, new)
    print(f"{args.out}: mean of {len(args.model)} models, weights {', '.join(f'{w:g}' for w in weights)}")


if __name__ == "__main__":
    main()
