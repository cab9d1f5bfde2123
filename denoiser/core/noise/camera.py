"""Camera-pipeline noise: clean sRGB -> raw -> noise -> the camera's own processing -> noisy sRGB.

Real noise is made on the sensor and then transformed by the camera, which is why it is brightness-dependent,
correlated over a few pixels and across channels, and quantised by JPEG. Following Brooks et al. 2019
("Unprocessing Images for Learned Raw Denoising") and Guo et al. 2019 (CBDNet):
1. unprocess: inverse tone curve, sRGB -> linear, inverse colour matrix, inverse white balance;
2. mosaic (RGGB at a random phase) and add heteroscedastic shot + read noise, (shot, read) drawn on the
   log-linear relation measured over real sensors (read variance grows with shot noise as ISO rises);
3. demosaic (bilinear or OpenCV's edge-aware), white balance, colour matrix, sRGB encoding, tone curve;
4. optionally in-camera chroma noise reduction and sharpening, then JPEG.
Everything is on the CPU (OpenCV demosaics and encodes); a 12 x 128 px batch costs a few milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from denoiser.core.bayer import demosaic_phase as _demosaic
from denoiser.core.bayer import site_mask as _mask


@dataclass(frozen=True)
class CameraParams:
    """One simulated shot: sensor noise, colour processing and in-camera steps."""

    shot: float  # shot-noise gain: variance = shot * raw + read
    read: float  # read-noise variance (raw 0..1 units)
    cam2rgb: np.ndarray  # (3, 3) colour matrix, rows sum to 1
    wb: tuple[float, float, float]  # white-balance gains (R, G, B)
    phase: tuple[int, int]  # Bayer phase (dy, dx) of the R site
    demosaic: str  # "bilinear" | "ea"
    chroma_nr: float  # std (px) of the chroma blur, 0 = none
    sharpen: float  # unsharp-mask amount, 0 = none
    jpeg: int  # quality, 0 = none
    tone: bool  # an S-shaped tone curve after the sRGB encoding


def read_for_shot(shot: float) -> float:
    """Read-noise variance on the log-linear relation measured over real sensors (Brooks et al. 2019):
    log(read) = 2.18 log(shot) + 1.20 (its mean; sample_shot_read adds the spread between sensors)."""
    return float(np.exp(2.18 * np.log(shot) + 1.20))


def sample_shot_read(rng: np.random.Generator, shot_range: tuple[float, float]) -> tuple[float, float]:
    """(shot, read): shot log-uniform over shot_range, read on the log-linear relation with N(0, 0.26) spread."""
    log_shot = rng.uniform(np.log(shot_range[0]), np.log(shot_range[1]))
    return float(np.exp(log_shot)), read_for_shot(float(np.exp(log_shot))) * float(np.exp(rng.normal(0, 0.26)))


def colour_matrix(off: np.ndarray) -> np.ndarray:
    """cam2rgb with rows summing to 1 (white stays white) from non-negative off-diagonal mixing `off` (3, 3).
    Its inverse has only non-negative entries, so unprocessing an in-gamut photo never leaves [0, 1]."""
    off = np.array(off, dtype=np.float64)
    np.fill_diagonal(off, 0)
    return np.eye(3) * (1 + off.sum(axis=1)) - off


def random_cam2rgb(rng: np.random.Generator) -> np.ndarray:
    return colour_matrix(rng.uniform(0.05, 0.45, size=(3, 3)))


def random_wb(rng: np.random.Generator) -> tuple[float, float, float]:
    """As-shot white-balance gains (R, 1, B) in the range of daylight-to-tungsten camera multipliers."""
    return (float(rng.uniform(1.9, 2.4)), 1.0, float(rng.uniform(1.5, 1.9)))


def sample_params(rng: np.random.Generator, shot_range: tuple[float, float] = (1e-4, 2e-2),
                  p_nr: float = 0.3, p_sharpen: float = 0.3, p_jpeg: float = 0.6,
                  jpeg_range: tuple[int, int] = (60, 98)) -> CameraParams:
    """Random camera settings; shot noise log-uniform over ISO ~100 to ~25600-like levels (Brooks et al.)."""
    shot, read = sample_shot_read(rng, shot_range)
    cam2rgb = random_cam2rgb(rng)
    return CameraParams(
        shot=shot, read=read, cam2rgb=cam2rgb, wb=random_wb(rng),
        phase=(int(rng.integers(2)), int(rng.integers(2))),
        demosaic=str(rng.choice(["bilinear", "ea"])),
        chroma_nr=float(rng.uniform(0.5, 2.0)) if rng.random() < p_nr else 0.0,
        sharpen=float(rng.uniform(0.2, 0.8)) if rng.random() < p_sharpen else 0.0,
        jpeg=int(rng.integers(jpeg_range[0], jpeg_range[1] + 1)) if rng.random() < p_jpeg else 0,
        tone=bool(rng.random() < 0.5))


def _to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055)


def _inverse_tone(y: np.ndarray) -> np.ndarray:
    """Inverse of the smoothstep tone curve 3y^2 - 2y^3 (Brooks et al.)."""
    return 0.5 - np.sin(np.arcsin(np.clip(1 - 2 * y, -1, 1)) / 3)


def _tone(x: np.ndarray) -> np.ndarray:
    """Smoothstep S-curve, extended linearly (slope 0) outside [0,1] so noise around black stays signed."""
    x = np.clip(x, 0, 1)
    return 3 * x * x - 2 * x * x * x


def _in_camera(img: np.ndarray, p: CameraParams) -> np.ndarray:
    """Chroma noise reduction and sharpening (linear filters) applied to the noise (H, W, 3)."""
    import cv2

    if p.chroma_nr > 0:
        luma = img @ np.array([0.299, 0.587, 0.114], np.float32)
        chroma = cv2.GaussianBlur(np.ascontiguousarray(img - luma[..., None]), (0, 0), p.chroma_nr)
        img = luma[..., None] + chroma
    if p.sharpen > 0:
        blur = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
        img = img + p.sharpen * (img - blur)
    return img


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if dec is None:
        raise RuntimeError("JPEG decoding failed")
    return dec.astype(np.float32) / 255.0


def _develop(raw: np.ndarray, p: CameraParams) -> np.ndarray:
    """Demosaiced, white-balanced, colour-corrected, encoded sRGB (H, W, 3) from a mosaic (H, W)."""
    return render(_demosaic(raw, p.phase, p.demosaic), p.cam2rgb, p.wb, p.tone)


def render(cam: np.ndarray, cam2rgb: np.ndarray, wb: tuple[float, float, float], tone: bool = False) -> np.ndarray:
    """Linear camera RGB (H, W, 3) -> encoded sRGB: white balance, colour matrix, clip, sRGB curve, tone curve."""
    lin = np.clip((cam * np.asarray(wb, np.float32)) @ cam2rgb.T.astype(np.float32), 0, 1)
    out = _to_srgb(lin)
    return _tone(out) if tone else out


def unprocess(srgb: np.ndarray, cam2rgb: np.ndarray, wb: tuple[float, float, float], tone: bool = False
              ) -> np.ndarray:
    """The inverse of `render`: encoded sRGB (H, W, 3) in [0,1] -> linear camera RGB (not white-balanced)."""
    x = srgb.astype(np.float32)
    lin = _to_linear(_inverse_tone(x) if tone else x)
    return lin @ np.linalg.inv(cam2rgb).T.astype(np.float32) / np.asarray(wb, np.float32)


def mosaic(cam: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) Bayer mosaic of camera RGB (H, W, 3): RGGB with the R site at `phase` (dy, dx)."""
    h, w, _ = cam.shape
    return np.take_along_axis(cam, _mask(h, w, phase)[..., None], axis=2)[..., 0]


def add_sensor_noise(raw: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Heteroscedastic sensor noise: variance shot * raw + read per photosite (Gaussian approximation)."""
    var = shot * np.maximum(raw, 0) + read
    return (raw + np.sqrt(var) * rng.standard_normal(raw.shape, np.float32)).astype(np.float32)


def simulate(clean: np.ndarray, p: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Noisy version (H, W, 3 float32 in [0,1]) of a clean sRGB image (H, W, 3 in [0,1]) shot with camera `p`.

    The signal is kept exact: the noise is the difference between developing the noisy and the noise-free
    mosaic of the same scene (so demosaicing and gamut clipping do not alter the clean content), then passed
    through the camera's linear in-camera steps and added to the clean image; JPEG applies to the result."""
    cam = unprocess(clean, p.cam2rgb, p.wb, p.tone)
    raw = np.clip(mosaic(cam, p.phase), 0, 1)
    noisy_raw = add_sensor_noise(raw, p.shot, p.read, rng)
    noise = (_develop(noisy_raw, p) - _develop(raw, p)).astype(np.float32)
    out = np.clip(clean + _in_camera(noise, p), 0, 1)
    return _jpeg(out, p.jpeg) if p.jpeg else out.astype(np.float32)


def camera_noise(clean: torch.Tensor, gen: torch.Generator, **kw: object) -> torch.Tensor:
    """Batched camera-pipeline noise for a clean (N, 3, H, W) batch in [0,1]; one random camera per image.

    kw go to sample_params. Grey batches (C = 1) are expanded to RGB and averaged back."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    rng = np.random.default_rng(seed)
    grey = clean.shape[1] == 1
    x = clean.expand(-1, 3, -1, -1) if grey else clean
    imgs = x.permute(0, 2, 3, 1).detach().cpu().numpy()
    out = np.stack([simulate(img, sample_params(rng, **kw), rng) for img in imgs])  # type: ignore[arg-type]
    y = torch.from_numpy(out).permute(0, 3, 1, 2).to(clean.device, clean.dtype)
    return y.mean(dim=1, keepdim=True) if grey else y
