"""Capture image files through a camera: the raw input is only ever passed through the optics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from privlens.data.images import ImageFileError, iter_images, list_images, save_image
from privlens.optics.camera import Camera
from privlens.outputs import check_output_dir, plan_outputs
from privlens.outputs import output_name as _output_name


@dataclass
class CaptureReport:
    """What a capture job wrote and what it skipped (with the reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def output_name(path: Path, root: Path) -> Path:
    """Relative output path (``.png``) that keeps a folder's structure."""
    return _output_name(path, root, ".png")


@torch.no_grad()
def capture_files(
    source: str | Path,
    camera: Camera,
    out_dir: str | Path,
    batch_size: int = 8,
    overwrite: bool = False,
    track: Callable[[Iterable, int], Iterable] | None = None,
    seed: int | None = None,
) -> CaptureReport:
    """Capture every image of ``source`` (a file or a folder) and write PNG captures to ``out_dir``.

    Images are centre-cropped and resized to the camera's ``image_size``. Unreadable files are
    skipped and reported, never fatal. Only captures are written, never the raw input: an output
    folder equal to or inside ``source``, two inputs sharing an output name and (unless
    ``overwrite``) existing outputs are refused before anything is written
    (:mod:`privlens.outputs`). ``track(items, total)`` may wrap the loop (a progress bar).
    With ``camera.config.sensor_noise`` each capture is stored as the sensor model reads it out
    (:meth:`privlens.optics.camera.Camera.readout`), drawn from ``seed`` when given (the same seed
    and inputs give the same files), from torch's global generator otherwise.
    """
    source = Path(source)
    out_dir = Path(out_dir)
    paths = list_images(source)
    check_output_dir(out_dir, [source])
    plan = plan_outputs(paths, source, out_dir, ".png", overwrite)
    report = CaptureReport()
    camera = camera.eval()
    psf = camera.psf()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=psf.device).manual_seed(seed)
    batch: list[tuple[Path, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        images = torch.stack([image for _, image in batch]).to(psf.device)
        captures = camera.image(images, psf)
        if camera.config.sensor_noise:  # the physical sensor model (`privlens capture`'s default)
            captures = camera.readout(captures, generator=generator)
        for (path, _), capture in zip(batch, captures, strict=True):
            report.written.append(save_image(capture, plan[path]))
        batch.clear()

    items = iter_images(paths, camera.config.image_size)
    for path, image in items if track is None else track(items, len(paths)):
        if isinstance(image, ImageFileError):
            report.skipped.append((path, str(image)))
            continue
        batch.append((path, image))
        if len(batch) == batch_size:
            flush()
    flush()
    return report
