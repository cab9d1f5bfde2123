"""`denoiser train`: train (or continue) a model from a JSON config on folders of clean photos."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from denoiser.cli.common import model_name, positive_float, positive_int, signals_stop
from denoiser.cli.progress import TerminalProgress
from denoiser.core.progress import Cancelled
from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on folders of clean photos (resumable)")
    p.add_argument("--config", type=Path, help="training config JSON (defaults built in)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, action="append", help="folder of clean photos (repeatable)")
    src.add_argument("--pack", type=Path, help="a training pack made by `denoiser pack` (crops kept on the device)")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, model files, log")
    p.add_argument("--minutes", type=positive_float, help="time budget for the whole run (overrides the config)")
    p.add_argument("--steps", type=positive_int, help="step budget (overrides the config)")
    p.add_argument("--threads", type=positive_int, help="CPU threads (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init", type=Path, help="start from these weights (.safetensors) instead of random")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps")
    p.add_argument("--name", default="model", type=model_name, help="name of the exported model file")
    p.add_argument("--teacher", type=Path, help="distil from this model (.safetensors): match its self-ensemble's "
                   "outputs on a fixed set of noisy crops (config: teacher_passes, teacher_crops, teacher_weight)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from denoiser.core.training.trainer import TrainConfig, Trainer

    try:
        _check_run_folder(args)
        cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
        overrides = {k: v for k, v in (("minutes", args.minutes), ("max_steps", args.steps),
                                       ("threads", args.threads)) if v is not None}
        cfg = replace(cfg, **overrides)
        import torch

        torch.set_num_threads(max(1, cfg.threads))  # process-wide, so set here at the entry point
        trainer = Trainer(cfg, args.data or [], args.out, device=args.device, init_weights=args.init,
                          name=args.name, pack=args.pack, teacher=args.teacher)
    except (ValueError, OSError) as exc:
        print(f"denoiser train: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return _train(trainer, cfg.to_dict(), args, "train", "training")


def _check_run_folder(args: argparse.Namespace) -> None:
    """Refuse an --out that is a file, and a checkpoint to resume that is not plain tensors (ValueError), before
    the run is built."""
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a run folder; choose a folder")
    if args.resume and (args.out / "checkpoint.pt").is_file():
        from denoiser.core.model.foreign import load_torch_weights

        load_torch_weights(args.out / "checkpoint.pt")


def _train(trainer: Any, config: dict[str, Any], args: argparse.Namespace, command: str, label: str) -> int:
    """Write the run's settings, train with a terminal bar, print the result: what `train` and `train-raw` share."""
    args.out.mkdir(parents=True, exist_ok=True)
    from denoiser.core.files import atomic_write_bytes

    atomic_write_bytes(args.out / "config.json", json.dumps(config, indent=2).encode())
    with TerminalProgress(label) as bar, signals_stop(bar, f"denoiser {command}: stopping after this step "
                                                      "(checkpoint kept); press Ctrl-C again to abort"):
        try:
            result = trainer.train(resume=args.resume, progress=bar)
        except Cancelled:
            print(f"denoiser {command}: stopped; resume with --resume", file=sys.stderr)
            return ExitCode.FAILED
        except (ValueError, OSError) as exc:
            print(f"denoiser {command}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    print(json.dumps({k: v for k, v in result.items() if k != "skipped"}, indent=2))
    for path, reason in result.get("skipped", {}).items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return ExitCode.OK


def add_pack_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pack", help="pack training crops into one small file for a short GPU run")
    p.add_argument("--data", type=Path, action="append", required=True, help="folder of clean photos (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="pack file (a new .npz file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing pack file (never an input)")
    p.add_argument("--max-mb", type=positive_float, default=48.0, help="size budget in MB (default 48)")
    p.add_argument("--crop", type=positive_int, default=128, help="crop side in pixels (default 128)")
    p.add_argument("--jpeg-native-quality", type=int, default=90, metavar="Q",
                   help="JPEGs of at least this quality keep their scale; others are halved (default 90; 0: all)")
    p.set_defaults(func=run_pack)


def run_pack(args: argparse.Namespace) -> int:
    from denoiser.core.training.pack import make_pack

    try:
        with TerminalProgress("packing") as bar:
            meta = make_pack(args.data, args.out, args.max_mb, args.crop, progress=bar,
                             native_quality=args.jpeg_native_quality, overwrite=args.overwrite)
    except (ValueError, OSError) as exc:
        print(f"denoiser pack: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(json.dumps(meta, indent=2))
    return ExitCode.OK


def add_estimator_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-estimator", help="train the noise-map estimator Auto uses (resumable)")
    p.add_argument("--data", type=Path, action="append", required=True, help="folder of clean photos (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="run folder: estimator_checkpoint.pt, estimator.safetensors")
    p.add_argument("--minutes", type=positive_float, default=20.0, help="time budget for the whole run (default 20)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default 1)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/estimator_checkpoint.pt")
    p.set_defaults(func=run_estimator)


def run_estimator(args: argparse.Namespace) -> int:
    import torch

    from denoiser.core.training.estimator import EstimatorTrainConfig, train_estimator

    torch.set_num_threads(args.threads)
    try:
        with TerminalProgress("training the estimator") as bar:
            result = train_estimator(args.data, args.out, EstimatorTrainConfig(minutes=args.minutes),
                                     resume=args.resume, progress=bar)
    except Cancelled:
        print("denoiser train-estimator: stopped; resume with --resume", file=sys.stderr)
        return ExitCode.FAILED
    except (ValueError, OSError) as exc:
        print(f"denoiser train-estimator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(json.dumps(result, indent=2))
    return ExitCode.OK


def add_raw_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-raw", help="train the joint raw denoise-and-demosaic model (resumable)")
    p.add_argument("--data", type=Path, action="append", required=True, help="folder of clean photos (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, raw.safetensors")
    p.add_argument("--minutes", type=positive_float, help="time budget for the whole run (default 10)")
    p.add_argument("--steps", type=positive_int, help="step budget (default: minutes only)")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init", default="default",
                   help="start from this model: an RGB model of the same shape (its trunk is copied; default: the "
                        "shipped default) or a raw model; 'none' starts from random weights")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]|mps")
    p.set_defaults(func=run_raw)


def run_raw(args: argparse.Namespace) -> int:
    import torch

    from denoiser.core.model.file import ModelFileError
    from denoiser.core.model.registry import find_model
    from denoiser.core.training.raw_task import RawTrainer, default_raw_train_config

    torch.set_num_threads(args.threads)
    try:
        _check_run_folder(args)
        init = None if args.init == "none" else find_model(args.init, kind=None).path
        overrides = {k: v for k, v in (("minutes", args.minutes), ("max_steps", args.steps),
                                       ("threads", args.threads)) if v is not None}
        cfg = default_raw_train_config(init, **overrides)
        trainer = RawTrainer(cfg, args.data, args.out, device=args.device, init=init)
    except (ValueError, OSError, ModelFileError) as exc:
        print(f"denoiser train-raw: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return _train(trainer, cfg.to_dict(), args, "train-raw", "training the raw model")
