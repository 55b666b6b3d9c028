"""Capture image files through a camera: the raw input is only ever passed through the optics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from privlens.data.images import ImageFileError, iter_images, list_images, save_image
from privlens.optics.camera import Camera


@dataclass
class CaptureReport:
    """What a capture job wrote and what it skipped (with the reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def output_name(path: Path, root: Path) -> Path:
    """Relative output path (``.png``) that keeps a folder's structure."""
    relative = path.relative_to(root) if root.is_dir() else Path(path.name)
    return relative.with_suffix(".png")


@torch.no_grad()
def capture_files(
    source: str | Path, camera: Camera, out_dir: str | Path, batch_size: int = 8
) -> CaptureReport:
    """Capture every image of ``source`` (a file or a folder) and write PNG captures to ``out_dir``.

    Images are centre-cropped and resized to the camera's ``image_size``. Unreadable files are
    skipped and reported, never fatal. Only captures are written, never the raw input.
    """
    source = Path(source)
    out_dir = Path(out_dir)
    paths = list_images(source)
    report = CaptureReport()
    camera = camera.eval()
    psf = camera.psf()
    batch: list[tuple[Path, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        images = torch.stack([image for _, image in batch]).to(psf.device)
        captures = camera.image(images, psf)
        for (path, _), capture in zip(batch, captures, strict=True):
            report.written.append(save_image(capture, out_dir / output_name(path, source)))
        batch.clear()

    for path, image in iter_images(paths, camera.config.image_size):
        if isinstance(image, ImageFileError):
            report.skipped.append((path, str(image)))
            continue
        batch.append((path, image))
        if len(batch) == batch_size:
            flush()
    flush()
    return report
