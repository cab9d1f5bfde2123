"""The RAW→DNG route of core.pipeline.process_photo: a camera raw in, its denoised raw (a linear DNG) out,
taken by every output planned as .dng (a RAW kept as it is, or --format dng). The pipeline's own claim,
skip and failure handling wrap it like any route; this adds only the raw path (core.inference.raw_path)."""
from __future__ import annotations

from denoiser.core.inference.raw_path import RawOptions, raw_to_dng
from denoiser.core.progress import Progress


def dng_route(task, options, engines, progress: Progress, prepared=None):
    """Route signature of core.pipeline.develop_raster; `prepared` (a developed photo) is not used: the raw
    is read as a mosaic here."""
    from denoiser.core.pipeline import DONE, PhotoResult, make_folder

    engine = engines.get(options.model, options.device, options.tile)  # the fallback's RGB network
    raw_options = RawOptions(strength_scale=options.strength_scale, controls=options.controls,
                             passes=options.passes, fixed_sigma=options.strength)
    make_folder(task.output.parent)
    saved = raw_to_dng(task.source, task.output, raw_options, engine, progress, options.overwrite,
                       options.max_megapixels, options.max_memory, dng=options.dng)
    level = saved.level or _sensor_level(saved, options.strength_scale)
    return PhotoResult(DONE, output=saved.output, level=level, model=f"{saved.model} ({saved.path})",
                       device=engine.device_name, notices=tuple(engine.notices))


def _sensor_level(saved, scale: float):
    """The joint model's level for the report: the sensor noise it was given, as a mean std in 0..255 units at
    mid-grey (0.18 of white), per the raw's (a, b) after the strength scale."""
    import numpy as np

    from denoiser.core.noise.level import NoiseLevel

    std = float(np.mean([np.sqrt(saved.noise.variance(0.18, k)) for k in range(4)])) * 255.0
    return NoiseLevel.auto(None, scale, estimator="sensor", mean=std / max(scale, 1e-9))
