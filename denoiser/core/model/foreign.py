"""Bring your own model: community denoisers (.pth/.pt or .safetensors) run through the same engine.

Model files are data, never code: .safetensors, or torch.load(weights_only=True), which refuses any
pickle that names a callable (a `__reduce__` payload) before running it. The architecture is recognised
from the state-dict keys and shapes (KAIR's published layouts):
  DnCNN   model.{0,2,..}.weight: plain conv/ReLU stack, output = input - predicted noise; no noise input,
          so the strength is applied by blending (strength / nominal level of the model, at most 1)
  FFDNet  the same keys, first conv takes 4*C+1 channels: pixel-unshuffled input + noise-level map
  DRUNet  m_head / m_down1-3 / m_body / m_up3-1 / m_tail: U-Net with residual blocks, noise-level map input
Only 1x models: an upscaler (pixel-shuffle tail, ESRGAN/SwinIR-style keys, or an output of another size)
is refused. spandrel would cover more architectures but needs torchvision, whose wheels require another
torch than the one this app pins, so it is not used.
Imported models live in <user data>/foreign as <name>.safetensors + <name>.json (architecture, nominal
level, source) and are listed and loaded next to the app's own models.
"""
from __future__ import annotations

import itertools
import json
import math
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save
from torch import nn

from denoiser.core.files import atomic_write_bytes
from denoiser.core.resources import user_data_path

FOREIGN_FORMAT = "denoiser-foreign-model"
ARCHITECTURES = ("dncnn", "ffdnet", "drunet")
DEFAULT_NOMINAL = 25.0  # noise level (0..255) a model without a noise input is taken to remove fully
# Parameter budget of a community model (KAIR's DRUNet, the largest recognised, has 32.6 M): checked on the
# declared shapes before anything is allocated.
MAX_PARAMETERS = 100_000_000
_UPSCALER_KEYS = re.compile(r"(^|\.)(upconv\d*|upsample\w*|upsampler|conv_up\d*|conv_hr|HRconv|conv_before_upsample)"
                            r"(\.|$)")


class ForeignModelError(ValueError):
    """A model file that cannot (or must not) be used; the message names the file and the reason."""


@dataclass(frozen=True)
class ForeignConfig:
    """What the engine needs from a model's config: the size its input is padded to."""

    architecture: str
    channels: int  # 1 (grey) or 3 (colour)
    size_multiple: int


def foreign_dir() -> Path:
    return user_data_path() / "foreign"


# ---------------------------------------------------------------------------------------------- reading

def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors/.pth/.pt file, unwrapped from the usual containers; never runs code."""
    path = Path(path)
    if not path.is_file():
        raise ForeignModelError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise ForeignModelError(f"{path}: not a valid safetensors file ({exc})") from None
    if suffix not in (".pth", ".pt", ".ckpt", ".bin"):
        raise ForeignModelError(f"{path}: unsupported model file type {suffix!r} (use .safetensors, .pth or .pt)")
    return _unwrap(load_torch_weights(path), path)


def load_torch_weights(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(weights_only=True) with one-line errors naming the file (ForeignModelError): a pickle that
    names a callable is reported as code, never loaded; torch's advice to retry with weights_only=False is
    not passed on. The one place the package reads a PyTorch pickle (community models, checkpoints)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        named = re.search(r"GLOBAL (\S+)", text)
        if named or "global" in text.lower():
            what = named.group(1) if named else ""
            raise ForeignModelError(
                f"{path}: this file contains code, not only weights; it was not loaded"
                f"{f' (it calls {what})' if what else ''}. Ask for a .safetensors file or a state dict saved "
                f"with torch.save(model.state_dict())") from None
        raise ForeignModelError(f"{path}: cannot read the weights: not a PyTorch weights file (or one that "
                                "needs more than plain tensors); it was not loaded") from None
    except Exception as exc:  # truncated zip, not a torch file at all...
        raise ForeignModelError(f"{path}: cannot read the weights ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]})") from None


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("params_ema", "params", "state_dict", "model", "net", "generator"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ForeignModelError(f"{path}: not a state dict of tensors")
    return {re.sub(r"^(module\.)+", "", str(k)): v for k, v in obj.items()}


# ---------------------------------------------------------------------------------------- architectures

class _ResBlock(nn.Module):
    def __init__(self, nc: int) -> None:
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(nc, nc, 3, 1, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(nc, nc, 3, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


class DRUNet(nn.Module):
    """KAIR's DRUNet layout (Zhang et al., TPAMI 2021): input = image + noise-level map (sigma/255)."""

    m_down1: nn.Sequential  # set by name in __init__ (KAIR's state-dict keys)
    m_down2: nn.Sequential
    m_down3: nn.Sequential
    m_up1: nn.Sequential
    m_up2: nn.Sequential
    m_up3: nn.Sequential

    def __init__(self, in_nc: int, out_nc: int, nc: list[int], nb: int) -> None:
        super().__init__()
        self.m_head = nn.Conv2d(in_nc, nc[0], 3, 1, 1, bias=False)
        for i in range(3):
            setattr(self, f"m_down{i + 1}", nn.Sequential(*[_ResBlock(nc[i]) for _ in range(nb)],
                                                          nn.Conv2d(nc[i], nc[i + 1], 2, 2, 0, bias=False)))
        self.m_body = nn.Sequential(*[_ResBlock(nc[3]) for _ in range(nb)])
        for i in range(3, 0, -1):
            setattr(self, f"m_up{i}", nn.Sequential(nn.ConvTranspose2d(nc[i], nc[i - 1], 2, 2, 0, bias=False),
                                                    *[_ResBlock(nc[i - 1]) for _ in range(nb)]))
        self.m_tail = nn.Conv2d(nc[0], out_nc, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        y = self.m_body(x4)
        y = self.m_up3(y + x4)
        y = self.m_up2(y + x3)
        y = self.m_up1(y + x2)
        return self.m_tail(y + x1)


def _conv_stack(weights: list[torch.Tensor], biases: bool) -> nn.Sequential:
    """Conv(3x3)/ReLU alternating, as KAIR's DnCNN/FFDNet `model` Sequential (indices 0, 2, 4...)."""
    layers: list[nn.Module] = []
    for i, w in enumerate(weights):
        layers.append(nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], 1, w.shape[2] // 2, bias=biases))
        if i < len(weights) - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ForeignDenoiser(nn.Module):
    """A community model behind the engine's interface: forward(x in [0,1] (N,C,H,W), sigma in 0..255)."""

    def __init__(self, architecture: str, net: nn.Module, channels: int, nominal: float = DEFAULT_NOMINAL) -> None:
        super().__init__()
        self.net = net
        multiple = {"dncnn": 1, "ffdnet": 2, "drunet": 8}[architecture]
        self.config = ForeignConfig(architecture, channels, multiple)
        self.nominal = float(nominal)

    @property
    def architecture(self) -> str:
        return self.config.architecture

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """sigma: one level per image (0..255), or a per-pixel level map (N,1,H,W) as the engine's Auto sends."""
        grey = self.config.channels == 1
        inp = x.mean(dim=1, keepdim=True) if grey else x
        n, _, h, w = inp.shape
        if sigma.dim() <= 1:
            level = sigma.float().reshape(-1, 1, 1, 1).to(inp).expand(n, 1, h, w)
        else:
            level = nn.functional.interpolate(sigma.float().to(inp), size=(h, w), mode="area")
        arch = self.config.architecture
        if arch == "dncnn":  # no noise input: the strength is a blend of the fixed-strength result
            out = inp - self.net(inp)
            out = inp + (level / self.nominal).clamp(0, 1) * (out - inp)
        elif arch == "ffdnet":
            down = nn.functional.pixel_unshuffle(inp, 2)
            half = nn.functional.avg_pool2d(level, 2) / 255.0
            out = nn.functional.pixel_shuffle(self.net(torch.cat([down, half], 1)), 2)
        else:
            out = self.net(torch.cat([inp, level / 255.0], 1))
        return out.expand(-1, 3, -1, -1) if grey and x.shape[1] == 3 else out


def _stack_weights(sd: dict[str, torch.Tensor], prefix: str) -> tuple[list[torch.Tensor], bool] | None:
    idx = sorted(int(m[1]) for k in sd if (m := re.fullmatch(rf"{prefix}(\d+)\.weight", k)))
    if not idx or idx != list(range(0, 2 * len(idx), 2)) or any(sd[f"{prefix}{i}.weight"].ndim != 4 for i in idx):
        return None
    return [sd[f"{prefix}{i}.weight"] for i in idx], f"{prefix}0.bias" in sd


def build(sd: dict[str, torch.Tensor], source: str, nominal: float = DEFAULT_NOMINAL) -> ForeignDenoiser:
    """Recognise the architecture from the keys and shapes, refuse upscalers, load strictly."""
    if any(_UPSCALER_KEYS.search(k) for k in sd):
        raise ForeignModelError(f"{source}: an upscaling (super-resolution) model; only 1x restoration models "
                                f"are supported")
    if "m_head.weight" in sd and "m_tail.weight" in sd:
        arch, make, channels = _drunet(sd, source)
    elif (stack := _stack_weights(sd, "model.")) is not None:
        arch, make, channels = _conv_stack_model(stack, source)
        extra = [k for k in sd if not k.startswith("model.")]
        if extra:
            raise ForeignModelError(f"{source}: weights do not fit the {arch} layout: unexpected keys {extra[:3]}")
        sd = {k.removeprefix("model."): v for k, v in sd.items()}
    else:
        raise ForeignModelError(f"{source}: architecture not recognised from its weights (supported: "
                                f"{', '.join(ARCHITECTURES)}; keys start {', '.join(list(sd)[:3])})")
    net = _allocate(make, sd, source, arch)
    try:
        net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as exc:
        raise ForeignModelError(f"{source}: weights do not fit the {arch} layout: "
                                f"{str(exc).splitlines()[0][:200]}") from None
    if not all(torch.isfinite(v).all() for v in sd.values()):
        raise ForeignModelError(f"{source}: the weights contain NaN or infinity")
    model = ForeignDenoiser(arch, net.eval(), channels, nominal).eval()
    _check_one_to_one(model, source)
    return model


def _allocate(make: Callable[[], nn.Module], sd: dict[str, torch.Tensor], source: str, arch: str) -> nn.Module:
    """The network, built only once its every tensor shape, as built on the meta device (no memory), equals
    the file's and its size is within MAX_PARAMETERS: a 34 KB file declaring a 4096-channel layer (with
    empty tensors) is refused before a byte is allocated for it."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in make().state_dict().items()}
    given = {k: tuple(v.shape) for k, v in sd.items()}
    if expected != given:
        missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        wrong = [f"{k} {given[k]} (expected {expected[k]})" for k in expected
                 if k in given and given[k] != expected[k]]
        detail = "; ".join(part for part in (f"missing {missing[:3]}" if missing else "",
                                             f"unexpected {extra[:3]}" if extra else "",
                                             f"shapes {wrong[:2]}" if wrong else "") if part)
        raise ForeignModelError(f"{source}: weights do not fit the {arch} layout: {detail}")
    params = sum(math.prod(shape) for shape in expected.values())
    if params > MAX_PARAMETERS:
        raise ForeignModelError(f"{source}: {params / 1e6:.0f} M parameters, more than the "
                                f"{MAX_PARAMETERS / 1e6:.0f} M a community denoiser may have; refused before loading")
    return make()


def _drunet(sd: dict[str, torch.Tensor], source: str) -> tuple[str, Callable[[], nn.Module], int]:
    head, tail = sd["m_head.weight"], sd["m_tail.weight"]
    downs = [_last(sd, f"m_down{i}.%d.weight") for i in (1, 2, 3)]  # each level's strided conv
    nc = [head.shape[0]] + [sd[k].shape[0] for k in downs if k]
    nb = sum(1 for k in sd if re.fullmatch(r"m_body\.\d+\.res\.0\.weight", k))
    channels = tail.shape[0]
    if len(nc) != 4 or head.shape[1] != channels + 1 or channels not in (1, 3):
        raise ForeignModelError(f"{source}: DRUNet-like keys but an unexpected layout "
                                f"(head {tuple(head.shape)}, tail {tuple(tail.shape)})")
    return "drunet", lambda: DRUNet(head.shape[1], channels, nc, nb), channels


def _conv_stack_model(stack: tuple[list[torch.Tensor], bool],
                      source: str) -> tuple[str, Callable[[], nn.Module], int]:
    """DnCNN (C -> C) or FFDNet (4C+1 -> 4C) from a plain conv stack; anything else is refused."""
    weights, biases = stack
    cin, cout = weights[0].shape[1], weights[-1].shape[0]
    if any(b.shape[1] != a.shape[0] for a, b in itertools.pairwise(weights)):
        raise ForeignModelError(f"{source}: weights do not fit a conv stack: the layers' channel counts "
                                f"do not chain ({[tuple(w.shape[:2]) for w in weights]})")
    if cin == cout and cin in (1, 3):
        arch, channels = "dncnn", cin
    elif cin in (5, 13) and cout == 4 * ((cin - 1) // 4):
        arch, channels = "ffdnet", (cin - 1) // 4
    elif cout in (cin * 4, cin * 16):
        raise ForeignModelError(f"{source}: a pixel-shuffle upscaler ({cin} -> {cout} channels); only 1x "
                                f"restoration models are supported")
    else:
        raise ForeignModelError(f"{source}: a conv stack of {cin} -> {cout} channels is not a DnCNN or "
                                f"FFDNet layout")
    return arch, lambda: _conv_stack(weights, biases), channels


def _last(sd: dict[str, torch.Tensor], pattern: str) -> str | None:
    """The key of the last module of a Sequential (the down-sampling conv), e.g. m_down1.4.weight."""
    keys = [pattern % i for i in range(64) if (pattern % i) in sd]
    return keys[-1] if keys else None


def _check_one_to_one(model: ForeignDenoiser, source: str) -> None:
    side = 8 * model.config.size_multiple
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, 3, side, side), torch.tensor([25.0]))
    except RuntimeError as exc:
        raise ForeignModelError(f"{source}: weights do not fit the {model.architecture} layout: "
                                f"{str(exc).splitlines()[0][:200]}") from None
    if tuple(out.shape) != (1, 3, side, side):
        raise ForeignModelError(f"{source}: the model turns a {side}x{side} image into {tuple(out.shape[2:])}; "
                                f"only 1x restoration models are supported")


# ------------------------------------------------------------------------------------------ the store

def import_foreign(src: Path, name: str, nominal: float = DEFAULT_NOMINAL) -> Path:
    """Validate a community model file and keep it as <user data>/foreign/<name>.safetensors + card."""
    from denoiser.core.model.store import ModelStoreError, validate_name

    try:
        name = validate_name(name)  # a safe name, unique among shipped, user and community models
    except ModelStoreError as exc:
        raise ForeignModelError(str(exc)) from None
    if not 0 < nominal <= 255:
        raise ForeignModelError(f"nominal noise level must be in 0..255, got {nominal:g}")
    sd = read_state_dict(Path(src))
    model = build(sd, str(src), nominal)
    card = {"format": FOREIGN_FORMAT, "name": name, "architecture": model.architecture,
            "channels": model.config.channels, "nominal_sigma": nominal, "imported_from": str(src),
            "noise_input": model.architecture != "dncnn"}
    foreign_dir().mkdir(parents=True, exist_ok=True)
    dest = foreign_dir() / f"{name}.safetensors"
    atomic_write_bytes(dest, save({k: v.contiguous() for k, v in sd.items()}, metadata={"card": json.dumps(card)}))
    atomic_write_bytes(dest.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode())
    return dest


def foreign_cards() -> dict[str, dict[str, Any]]:
    """Installed community models by name: their cards (unreadable ones are left out)."""
    cards = {}
    if foreign_dir().is_dir():
        for path in sorted(foreign_dir().glob("*.safetensors")):
            if path.name.startswith("."):
                continue
            try:
                card = json.loads(path.with_suffix(".json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(card, dict) and card.get("format") == FOREIGN_FORMAT:
                cards[path.stem] = card | {"path": str(path)}
    return cards


@dataclass(frozen=True)
class CommunityEntry:
    """An installed community model as a model list shows it (ModelEntry's name/path/builtin; no card)."""

    name: str
    path: Path
    architecture: str
    builtin: bool = False
    card: None = None


def community_entries() -> list[CommunityEntry]:
    return [CommunityEntry(name, Path(c["path"]), str(c.get("architecture", "")))
            for name, c in foreign_cards().items()]


def delete_foreign(name: str) -> None:
    """Remove an installed community model (its weights and card; never anything outside its folder)."""
    card = foreign_cards().get(name)
    if card is None:
        raise ForeignModelError(f"no community model named {name!r}")
    weights = Path(card["path"])
    if weights.parent.resolve() != foreign_dir().resolve() or weights.is_symlink():
        raise ForeignModelError(f"{weights}: not inside {foreign_dir()}; left alone")
    weights.with_suffix(".json").unlink(missing_ok=True)
    weights.unlink(missing_ok=True)


def load_foreign(name_or_path: str, nominal: float | None = None) -> tuple[ForeignDenoiser, str]:
    """An installed community model by name, or a model file by path: (model, its name)."""
    cards = foreign_cards()
    if name_or_path in cards:
        card = cards[name_or_path]
        sd = read_state_dict(Path(card["path"]))
        return build(sd, card["path"], float(nominal or card.get("nominal_sigma", DEFAULT_NOMINAL))), name_or_path
    path = Path(name_or_path)
    return build(read_state_dict(path), str(path), nominal or DEFAULT_NOMINAL), path.stem


def is_foreign(name: str | None) -> bool:
    """True for an installed community model's name, a .pth/.pt file, or a .safetensors file without our
    model card (ours always carry one, embedded and as a sidecar)."""
    if not name:
        return False
    path = Path(name)
    if name in foreign_cards() or path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin"):
        return True
    if path.suffix.lower() != ".safetensors" or not path.is_file() or path.with_suffix(".json").is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as fh:
            return "card" not in (fh.metadata() or {})
    except (OSError, SafetensorError):
        return False  # our loader then says what is wrong with the file
