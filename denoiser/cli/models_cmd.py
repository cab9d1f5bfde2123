"""`denoiser models [list|rename|delete|export|import|reset]`: see and manage installed models."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from denoiser.exit_codes import ExitCode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list and manage models (no verb: list)",
                       description="List installed models, or rename/delete/export/import your own. "
                                   "The shipped default can be exported but never renamed or deleted.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    ls = verbs.add_parser("list", help="list models (the default)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    rn = verbs.add_parser("rename", help="rename one of your models")
    rn.add_argument("old")
    rn.add_argument("new")
    dl = verbs.add_parser("delete", help="delete one of your models (and its fine-tuning run), or an unfinished "
                                         "fine-tuning run")
    dl.add_argument("name")
    ex = verbs.add_parser("export", help="copy a model file (.safetensors, card embedded) elsewhere")
    ex.add_argument("name")
    ex.add_argument("dest", type=Path, help="target file or folder")
    ex.add_argument("--overwrite", action="store_true")
    im = verbs.add_parser("import", help="validate and add a model file: ours (.safetensors with a card) or a "
                                         "community denoiser (DnCNN, FFDNet, DRUNet as .pth/.pt/.safetensors)")
    im.add_argument("file", type=Path)
    im.add_argument("--name", help="name to give it (default: the file name)")
    im.add_argument("--nominal", type=float, default=25.0,
                    help="community models without a noise-level input: the noise level (0..255) they remove "
                         "fully; lower strengths blend toward the input (default 25)")
    verbs.add_parser("reset", help="check the shipped default and make it the model to use")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from denoiser.core.model import kept, store
    from denoiser.core.model.file import ModelFileError
    from denoiser.core.model.foreign import ForeignModelError, delete_foreign, foreign_cards, import_foreign, is_foreign
    from denoiser.core.model.registry import list_models

    verb = args.verb or "list"
    try:
        if verb == "list":
            return _list(getattr(args, "json", False))
        if verb == "rename":
            entry = store.rename(args.old, args.new)
            print(f"renamed {args.old!r} to {entry.name!r}")
        elif verb == "delete" and args.name in foreign_cards():
            delete_foreign(args.name)
            print(f"deleted {args.name!r}")
        elif verb == "delete" and any(r.name == args.name for r in kept.unfinished_runs()) and not any(
                e.name == args.name for e in list_models()):
            print(f"deleted the unfinished fine-tuning run {args.name!r} ({kept.delete_run(args.name)})")
        elif verb == "delete":
            store.delete(args.name)
            print(f"deleted {args.name!r}")
        elif verb == "export":
            print(f"exported to {store.export(args.name, args.dest, args.overwrite)}")
        elif verb == "import" and is_foreign(str(args.file)):
            dest = import_foreign(args.file, args.name or args.file.stem, args.nominal)
            print(f"imported {dest.stem!r} ({foreign_cards()[dest.stem]['architecture']}, {dest})")
        elif verb == "import":
            entry = store.import_model(args.file, args.name)
            print(f"imported {entry.name!r} ({entry.path})")
        elif verb == "reset":
            entry = store.reset_to_default()
            print(f"the shipped default {entry.name!r} is intact and is used whenever no model is chosen "
                  f"({entry.path}); your own models were left untouched")
    except store.TargetExistsError as exc:
        print(f"denoiser models {verb}: {exc} (--overwrite)", file=sys.stderr)
        return ExitCode.FAILED
    except (store.ModelStoreError, ModelFileError, ForeignModelError, OSError) as exc:
        print(f"denoiser models {verb}: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _list(as_json: bool) -> int:
    from denoiser.core.model.foreign import foreign_cards
    from denoiser.core.model.kept import human_size, size_of, unfinished_runs
    from denoiser.core.model.profiles import describe_profile, profile_of
    from denoiser.core.model.registry import damaged_models, list_models
    from denoiser.core.model.store import describe

    entries = list_models()
    rows = [describe(e) | {"camera_profile": profile_of(e), "bytes": size_of(e.path)} for e in entries]
    community = foreign_cards()
    damaged = damaged_models()
    runs = unfinished_runs()
    if as_json:
        broken = [{"name": d.name, "path": str(d.path), "damaged": d.problem, "builtin": d.builtin} for d in damaged]
        left = [{"name": r.name, "path": str(r.path), "unfinished_run": True, "bytes": r.bytes} for r in runs]
        print(json.dumps(rows + list(community.values()) + broken + left, indent=2, default=str))
        return ExitCode.OK
    _print_runs(runs)
    if not rows and not damaged:
        print("no models installed", file=sys.stderr)
        return ExitCode.FAILED
    width = max(len(name) for name in [r["name"] for r in rows] + list(community) + [d.name for d in damaged])
    for r in rows:
        metric = r["metrics"].get("val_after")
        extra = f", val {r['metrics'].get('validation')}: {metric:.2f} dB" if isinstance(metric, float) else ""
        profile = f"  camera profile: {describe_profile(r['camera_profile'])}" if r["camera_profile"] else ""
        print(f"{r['name']:<{width}}  {r['architecture']}, {r['parameters'] / 1e6:.2f} M params, "
              f"{human_size(r['bytes'])}  [{r['origin']}{extra}]{profile}")
    for name, card in community.items():
        how = ("noise-level input" if card.get("noise_input") else
               f"strength by blending, full at {card.get('nominal_sigma', 25):g}")
        print(f"{name:<{width}}  {card['architecture']} ({how})  [community, imported]")
    for d in damaged:
        fix = "reinstall the app" if d.builtin else f"delete it with: denoiser models delete {d.name}"
        print(f"{d.name:<{width}}  DAMAGED, cannot be used: {d.problem} ({fix})")
    return ExitCode.OK


def _print_runs(runs: list) -> None:
    """Unfinished fine-tuning runs (core.model.kept), on stderr before the models: files the app keeps."""
    from denoiser.core.model.kept import human_size

    for r in runs:
        what = (f"a stopped run's checkpoint: `denoiser finetune --resume --name {r.name}` continues it"
                if r.has_checkpoint else "its settings only")
        print(f"unfinished fine-tuning run {r.name!r}: {human_size(r.bytes)} in {r.path} ({what}; free it with: "
              f"denoiser models delete {r.name})", file=sys.stderr)
