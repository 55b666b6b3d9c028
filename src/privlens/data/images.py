"""Reading and writing image files as float RGB tensors in [0, 1] (``[3, H, W]``).

Grey images are replicated to three channels, RGBA images are composited on white (alpha is
transparency, not content), 16-bit images are scaled by 65535. Every failure is an
:class:`ImageFileError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageFileError(ValueError):
    """An image file is missing, unreadable or not an image."""


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``H x W``, ``H x W x 1/3/4`` uint8/uint16/float array -> float RGB ``[3, H, W]`` in [0, 1]."""
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif array.dtype == bool:
        values = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ValueError("float image arrays must lie in [0, 1]")
    else:
        raise ValueError(f"unsupported image dtype {array.dtype}")
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim != 3 or values.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an H x W (x C) image with C in 1..4, got shape {array.shape}")
    if values.shape[2] in (2, 4):  # grey+alpha or RGBA: composite on white
        alpha = values[..., -1:]
        values = values[..., :-1] * alpha + (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Read an image file as float RGB ``[3, H, W]`` in [0, 1]; optionally square it to ``size``.

    With ``size``, the image is centre-cropped to a square and resized (antialiased bilinear).
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"image not found: {path}")
    if not path.is_file():
        raise ImageFileError(f"not a file: {path}")
    try:
        with Image.open(path) as handle:
            handle.load()
            if handle.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                handle = handle.convert(
                    "RGBA" if "A" in handle.mode or "transparency" in handle.info else "RGB"
                )
            elif handle.mode.startswith("I;16"):
                handle = Image.fromarray(np.asarray(handle).astype(np.uint16))
            elif handle.mode in ("I", "F"):
                raise ImageFileError(f"{path}: 32-bit integer/float images are not supported")
            array = np.asarray(handle)
    except ImageFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageFileError(f"{path} is not a readable image ({error})") from error
    try:
        tensor = array_to_tensor(array)
    except ValueError as error:
        raise ImageFileError(f"{path}: {error}") from error
    if size is not None:
        tensor = square_resize(tensor, size)
    return tensor


def square_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop ``[C, H, W]`` to a square and resize to ``size x size`` (antialiased)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[..., top : top + side, left : left + side]
    if side == size:
        return square.contiguous()
    resized = F.interpolate(
        square[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0].clamp(0, 1)


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write a ``[C, H, W]`` (C = 1 or 3) float image in [0, 1] as an 8-bit PNG/JPEG."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a [C, H, W] image with C = 1 or 3, got {tuple(image.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).round()
    array = array.astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
    return path


def list_images(path: str | Path) -> list[Path]:
    """The image file itself, or every image below a folder (sorted); error when there is none."""
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"not found: {path}")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ImageFileError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {path}")
    return found


def iter_images(
    paths: list[Path], size: int | None = None
) -> Iterator[tuple[Path, torch.Tensor | ImageFileError]]:
    """Yield ``(path, image)`` or ``(path, error)`` so one bad file does not stop a batch job."""
    for path in paths:
        try:
            yield path, load_image(path, size)
        except ImageFileError as error:
            yield path, error
