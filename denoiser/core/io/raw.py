"""The raw itself: the visible mosaic (or a linear DNG's pixels) and the sensor metadata a DNG writer and a
raw denoiser need, read with rawpy (LibRaw); a DNG's own tags (colour matrices, NoiseProfile, levels of a
lossy linear DNG) read with tifffile, since LibRaw leaves some of them out.

Units: `cfa` (Bayer) and `rgb` (linear) are float32, black-subtracted per channel and divided by
(white - black), so 0..1 with noise going below 0. Memory is checked from the header before unpacking.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoiser.core.io import meta
from denoiser.core.io.read import DecodeError, check_size

log = logging.getLogger(__name__)

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
# XYZ (D65) -> linear sRGB: the colour matrix of a camera LibRaw has none for (its data is treated as sRGB).
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
D65 = 21  # EXIF LightSource code
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw's flip -> EXIF orientation
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_OTHER_WAY = "use --format tiff (or jpeg/png) to develop it as an ordinary photo"


class UnsupportedRaw(DecodeError):
    """A raw this path cannot take (X-Trans, Foveon, monochrome, CMYG...); the message names the file."""


@dataclass(frozen=True, eq=False)  # arrays inside: identity, not element-wise, equality
class RawImage:
    path: Path
    kind: str  # "bayer" | "linear"
    cfa: np.ndarray | None  # (H, W) float32 normalised mosaic (kind "bayer")
    pattern: str  # the 2x2 at the top-left of cfa, e.g. "RGGB" ("" for linear)
    rgb: np.ndarray | None  # (H, W, 3) float32 normalised linear camera RGB (kind "linear")
    black_level: tuple[float, ...]  # per CFA site in pattern order (bayer: 4) or per sample (linear: 3)
    white_level: tuple[float, ...]
    wb: tuple[float, float, float]  # as-shot multipliers, g = 1
    color_matrix1: np.ndarray  # (3, 3) XYZ -> camera
    illuminant1: int
    color_matrix2: np.ndarray | None = None
    illuminant2: int | None = None
    iso: float | None = None
    exposure_time: float | None = None
    orientation: int = 1  # EXIF 1..8
    default_crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # (x, y, width, height) in cfa/rgb pixels
    baseline_exposure: float = 0.0
    noise_profile: tuple[tuple[float, float], ...] | None = None  # DNG NoiseProfile (a, b) per R, G, B plane
    exif: bytes | None = None
    xmp: bytes | None = None
    make: str = ""
    model: str = ""
    lens: str = ""
    unique_camera_model: str = ""
    bits: int = 16  # bits per sample the levels are in
    # A DNG's opcode lists (tag -> bytes: 51008/51009/51022, e.g. a phone's lens-shading gain maps), kept only
    # when the visible mosaic is the whole stored raw, so their coordinates still hold in a DNG we write
    opcodes: tuple[tuple[int, bytes], ...] = ()
    # Read-noise variance per CFA site (pattern order, normalised units) measured on the sensor's masked,
    # optically black margin where the file keeps one: the b of the noise model, measured rather than fitted
    black_noise: tuple[float, float, float, float] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        src = self.cfa if self.cfa is not None else self.rgb
        assert src is not None
        return int(src.shape[0]), int(src.shape[1])


def read_raw(path: str | Path, max_megapixels: float = 250.0, max_memory: int | None = None) -> RawImage:
    """Read a Bayer raw (kind "bayer") or a linear DNG (kind "linear"); UnsupportedRaw for other layouts,
    DecodeError for a damaged file or one over the size/memory limits (checked before unpacking)."""
    import rawpy

    p = Path(path)
    try:
        raw = rawpy.imread(str(p))
    except (rawpy.LibRawError, OSError) as exc:
        raise DecodeError(f"{p}: not a camera RAW file that LibRaw can read ({_reason(exc)})") from None
    with raw:
        s = raw.sizes
        try:
            check_size(s.raw_width, s.raw_height, max_megapixels, max_memory)
        except DecodeError as exc:
            raise DecodeError(f"{p}: {exc}") from None
        tags = _dng_tags(p)
        try:
            return _build(raw, p, _kind(raw, p), tags)  # raw_type and the pixels unpack the data
        except rawpy.LibRawError as exc:
            raise DecodeError(f"{p}: the RAW data is damaged or truncated ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else str(exc)
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg) or type(exc).__name__


def _kind(raw, p: Path) -> str:
    import rawpy

    desc = raw.color_desc.decode("ascii", "replace")
    if raw.raw_type == rawpy.RawType.Stack:
        if raw.num_colors == 3 and set(desc[:3]) == set("RGB"):
            return "linear"
        raise UnsupportedRaw(f"{p}: a {raw.num_colors}-colour stacked raw is not supported; {_OTHER_WAY}")
    if raw.num_colors == 1:
        raise UnsupportedRaw(f"{p}: a monochrome sensor is not supported on the raw path; {_OTHER_WAY}")
    pattern = raw.raw_pattern
    if pattern is None or pattern.shape != (2, 2):
        layout = "X-Trans (6x6)" if pattern is not None and pattern.shape == (6, 6) else "non-Bayer"
        raise UnsupportedRaw(f"{p}: {layout} sensor layout is not supported on the raw path; {_OTHER_WAY}")
    if sorted(desc[int(i)] for i in pattern.ravel()) != ["B", "G", "G", "R"]:
        raise UnsupportedRaw(f"{p}: colour filter {desc!r} is not an RGB Bayer mosaic; {_OTHER_WAY}")
    return "bayer"


def _build(raw, p: Path, kind: str, tags: dict) -> RawImage:
    desc = raw.color_desc.decode("ascii", "replace")
    black_c = np.asarray(raw.black_level_per_channel, np.float64)
    white_c = np.asarray(raw.camera_white_level_per_channel or [raw.white_level] * 4, np.float64)
    if kind == "bayer":
        mosaic = raw.raw_image_visible  # unpacks
        colours = np.asarray(raw.raw_colors_visible[:2, :2]).ravel()
        pattern = "".join(desc[int(c)] for c in colours)
        black = tuple(float(black_c[c]) for c in colours)
        white = tuple(float(white_c[c]) for c in colours)
        cfa = _normalise_cfa(mosaic, black, white)
        rgb, shape = None, cfa.shape
        black_noise = _masked_noise(raw, colours, black, white)
    else:
        data = raw.raw_image_visible[..., :3]
        black, white = _linear_levels(tags, black_c, white_c, data)
        lo, hi = np.asarray(black, np.float32), np.asarray(white, np.float32)
        rgb = (data.astype(np.float32) - lo) / (hi - lo)
        cfa, pattern, shape, black_noise = None, "", rgb.shape[:2], None
    exif = _exif(p)
    make, model = _exif_text(exif, 271), _exif_text(exif, 272)
    cm1, il1, cm2, il2 = _matrices(raw, tags)
    other, lens = raw.other, raw.lens
    return RawImage(
        path=p, kind=kind, cfa=cfa, pattern=pattern, rgb=rgb, black_level=black, white_level=white,
        wb=_white_balance(raw), color_matrix1=cm1, illuminant1=il1, color_matrix2=cm2, illuminant2=il2,
        iso=float(other.iso_speed) or None, exposure_time=float(other.shutter_speed) or None,
        orientation=_orientation(raw, tags), default_crop=_crop(raw, tags, shape),
        baseline_exposure=float(tags.get("baseline_exposure", 0.0)), noise_profile=tags.get("noise_profile"),
        exif=exif, xmp=tags.get("xmp"), make=make, model=model, opcodes=_opcodes(raw, tags),
        black_noise=black_noise,
        lens=" ".join(x for x in (lens.make, lens.model) if x and x not in ("", "0")).strip(),
        unique_camera_model=tags.get("unique_camera_model") or " ".join(x for x in (make, model) if x) or
        "Unknown camera", bits=16)


def _normalise_cfa(mosaic: np.ndarray, black: tuple[float, ...], white: tuple[float, ...]) -> np.ndarray:
    cfa = np.empty(mosaic.shape, np.float32)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        scale = np.float32(1.0 / max(white[k] - black[k], 1.0))
        np.multiply(mosaic[dy::2, dx::2].astype(np.float32) - np.float32(black[k]), scale,
                    out=cfa[dy::2, dx::2])
    return cfa


MASK_EDGE = 4  # masked columns/rows next to the image or the sensor's edge are left out (light leaks, ramps)
MASK_MIN_SAMPLES = 2000  # per CFA site


def _masked_noise(raw, colours: np.ndarray, black: tuple[float, ...],
                  white: tuple[float, ...]) -> tuple[float, float, float, float] | None:
    """Read-noise variance per CFA site on the masked margin left of and above the image (LibRaw's margins):
    the variance of the values within 6 robust standard deviations (1.4826 x the median absolute deviation,
    at least one step) of their median, so hot pixels and defects do not count; None without a margin."""
    s = raw.sizes
    full, sites = raw.raw_image, raw.raw_colors
    regions = []
    if s.left_margin >= 2 * MASK_EDGE + 2:
        rows = slice(s.top_margin, s.top_margin + s.height)
        regions.append((rows, slice(MASK_EDGE, s.left_margin - MASK_EDGE)))
    if s.top_margin >= 2 * MASK_EDGE + 2:
        regions.append((slice(MASK_EDGE, s.top_margin - MASK_EDGE), slice(s.left_margin, s.left_margin + s.width)))
    if not regions:
        return None
    out = []
    for k, colour in enumerate(colours):
        values = np.concatenate([full[r][sites[r] == colour].astype(np.float64) for r in regions])
        if values.size < MASK_MIN_SAMPLES:
            return None
        centre = np.median(values)
        spread = max(1.4826 * float(np.median(np.abs(values - centre))), 1.0)
        kept = values[np.abs(values - centre) <= 6.0 * spread]
        out.append(float(np.var(kept)) / max(white[k] - black[k], 1.0) ** 2)
    return out[0], out[1], out[2], out[3]


def _linear_levels(tags: dict, black_c: np.ndarray, white_c: np.ndarray,
                   data: np.ndarray) -> tuple[tuple, tuple]:
    """A linear DNG's levels from its own tags when it has them: LibRaw reports a lossy (8-bit JPEG)
    linear DNG's white level in 16-bit units while its samples stay 8-bit, and hands those samples over
    with the black level already subtracted (most of them then lie below the tag's BlackLevel)."""
    if "black" in tags and "white" in tags:
        black, white = tags["black"], tags["white"]
    else:
        black, white = tuple(float(b) for b in black_c[:3]), tuple(float(w) for w in white_c[:3])
    if float(np.median(data[::8, ::8, 1])) < black[1]:
        white, black = tuple(w - b for w, b in zip(white, black, strict=True)), (0.0, 0.0, 0.0)
    return black, white


def _white_balance(raw) -> tuple[float, float, float]:
    for wb in (raw.camera_whitebalance, raw.daylight_whitebalance):
        r, g, b = (float(x) for x in wb[:3])
        if min(r, g, b) > 0:
            return r / g, 1.0, b / g
    return 1.0, 1.0, 1.0


def _matrices(raw, tags: dict) -> tuple[np.ndarray, int, np.ndarray | None, int | None]:
    if "cm1" in tags:
        return tags["cm1"], tags.get("il1", D65), tags.get("cm2"), tags.get("il2")
    m = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3]
    if not np.any(m):
        log.info("no colour matrix known for this camera: its data is described as linear sRGB")
        m = XYZ_TO_SRGB
    return m, D65, None, None


def _orientation(raw, tags: dict) -> int:
    if tags.get("orientation") in range(1, 9):
        return int(tags["orientation"])
    return _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1)


def _crop(raw, tags: dict, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the default crop in visible pixels: the DNG's own, else LibRaw's inset crop."""
    h, w = shape
    if "crop" in tags:
        x, y, cw, ch = tags["crop"]
    else:
        s = raw.sizes
        if not s.crop_width or not s.crop_height:
            return 0, 0, w, h
        x, y, cw, ch = s.crop_left_margin - s.left_margin, s.crop_top_margin - s.top_margin, s.crop_width, \
            s.crop_height
    x, y = min(max(int(x), 0), w - 1), min(max(int(y), 0), h - 1)
    return x, y, max(1, min(int(cw), w - x)), max(1, min(int(ch), h - y))


def _opcodes(raw, tags: dict) -> tuple[tuple[int, bytes], ...]:
    s = raw.sizes
    if s.top_margin or s.left_margin or s.height != s.raw_height or s.width != s.raw_width:
        return ()
    return tuple(tags.get("opcodes", ()))


def _exif(p: Path) -> bytes | None:
    with open(p, "rb") as f:
        if f.read(4) not in _TIFF_MAGIC and p.suffix.lower() not in (".orf", ".rw2"):
            return None
        f.seek(0)
        return meta.exif_from_tiff_file(f)


def _exif_text(exif: bytes | None, tag: int) -> str:
    if not exif:
        return ""
    try:
        entry = next((e for e in meta.parse_exif(exif) if e.tag == tag and e.type == 2), None)
    except (meta.MetadataError, ValueError):
        return ""
    return entry.data.split(b"\0")[0].decode("utf-8", "replace").strip() if entry else ""


def _dng_tags(p: Path) -> dict:
    """The DNG tags LibRaw does not hand over, from IFD0 and the full-resolution raw IFD ({} if not DNG)."""
    import tifffile

    with open(p, "rb") as f:
        if f.read(4) not in _TIFF_MAGIC:
            return {}
    try:
        with tifffile.TiffFile(p) as tif:
            ifd0 = tif.pages.first
            if 50706 not in ifd0.tags:
                return {}
            main = _raw_ifd(ifd0)
            _check_required(p, main)
            return _collect(ifd0.tags, main.tags if main is not None else ifd0.tags)
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.info("%s: DNG tags unreadable (%s); using LibRaw's values", p, exc)
        return {}


def _check_required(p: Path, main) -> None:
    """A CFA DNG without its CFA layout would be read as a monochrome sensor: name what is missing."""
    if main is None or int(main.photometric) != 32803:
        return
    missing = [name for code, name in ((33421, "CFARepeatPatternDim"), (33422, "CFAPattern"))
               if code not in main.tags]
    if missing:
        raise DecodeError(f"{p}: this DNG is missing required tags ({', '.join(missing)}), so its colour "
                          "filter layout is unknown; re-export it from the camera's converter")


def _raw_ifd(ifd0):
    if ifd0.tags.get(254) is not None and int(ifd0.tags[254].value) == 0:
        return ifd0
    for sub in ifd0.pages or []:
        if sub.tags.get(254) is not None and int(sub.tags[254].value) == 0:
            return sub
    return None


def _collect(t0, tr) -> dict:
    def val(tags, code):
        tag = tags.get(code) or t0.get(code)
        return None if tag is None else _numbers(tag) if int(tag.dtype) in (5, 10) else tag.value

    out: dict = {}
    for key, code in (("cm1", 50721), ("cm2", 50722)):
        v = val(t0, code)
        if v is not None and len(_ratios(v)) == 9:
            out[key] = np.array(_ratios(v)).reshape(3, 3)
    for key, code in (("il1", 50778), ("il2", 50779), ("orientation", 274)):
        if val(t0, code) is not None:
            out[key] = int(val(t0, code))
    if "cm2" not in out:
        out.pop("il2", None)
    if val(t0, 50730) is not None:
        out["baseline_exposure"] = _ratios(val(t0, 50730))[0]
    if val(t0, 50708):
        out["unique_camera_model"] = str(val(t0, 50708)).strip("\0 ")
    if val(t0, 700) is not None:
        x = val(t0, 700)
        out["xmp"] = x.encode() if isinstance(x, str) else bytes(x)
    out["opcodes"] = tuple((code, bytes(tr[code].value)) for code in (51008, 51009, 51022) if code in tr)
    noise = val(tr, 51041)
    if noise is not None and len(noise) in (2, 6):
        pairs = [(float(noise[i]), float(noise[i + 1])) for i in range(0, len(noise), 2)]
        out["noise_profile"] = tuple(pairs * 3 if len(pairs) == 1 else pairs)
    origin, size = val(tr, 50719), val(tr, 50720)
    if origin is not None and size is not None:
        o, s = _ratios(origin), _ratios(size)
        out["crop"] = (round(o[0]), round(o[1]), round(s[0]), round(s[1]))
    black, white = val(tr, 50714), val(tr, 50717)
    if black is not None and white is not None and tr.get(50713) is not None \
            and tuple(tr[50713].value) == (1, 1):
        b = _ratios(black)
        w = [float(x) for x in np.atleast_1d(white)]
        out["black"] = tuple((b * 3)[:3]) if len(b) == 1 else tuple(b[:3])
        out["white"] = tuple((w * 3)[:3]) if len(w) == 1 else tuple(w[:3])
    return out


def _numbers(tag) -> tuple[float, ...]:
    """tifffile gives (S)RATIONAL tags as flat (num, den, num, den...) tuples."""
    a = list(np.atleast_1d(tag.value))
    return tuple(a[i] / a[i + 1] if a[i + 1] else 0.0 for i in range(0, len(a), 2))


def _ratios(v) -> list[float]:
    return [float(x) for x in np.atleast_1d(v)]
