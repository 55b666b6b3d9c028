"""Photos in and out at full size: EXIF orientation applied, the input's format kept.

A photo is read as an ``H x W x 3`` uint8 RGB array, upright (its EXIF orientation applied, so
a phone portrait is not processed sideways), plus what is needed to write it back in the same
format: grey photos are written grey, an alpha channel is kept as it was, PNG stays lossless and
JPEG is written at quality 95. Metadata (EXIF: camera, GPS, thumbnails that show the original
face) is not copied to the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from privlens.data.images import ImageFileError
from privlens.files import atomic_path

JPEG_QUALITY = 95
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


@dataclass
class Photo:
    """``rgb``: ``H x W x 3`` uint8, upright; ``alpha``: ``H x W`` uint8 or ``None``; ``grey``:
    the file was single-channel; ``rotated``: an EXIF orientation was applied."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    rotated: bool
    format: str


def read_photo(path: str | Path) -> Photo:
    """Read ``path`` upright (EXIF orientation applied); :class:`ImageFileError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"image not found: {path}")
    try:
        with Image.open(path) as handle:
            handle.load()
            orientation = handle.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(handle)
            source_format = handle.format or FORMATS.get(path.suffix.lower(), "PNG")
            mode = upright.mode
            grey = mode in ("L", "LA", "1", "I;16", "I")
            alpha = None
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in upright.info):
                rgba = upright.convert("RGBA")
                alpha = np.asarray(rgba)[..., 3].copy()
                rgb = np.asarray(rgba.convert("RGB"))
            elif mode.startswith("I"):
                values = np.asarray(upright).astype(np.float64)
                rgb = np.repeat(
                    (values / max(values.max(), 1) * 255).round().astype(np.uint8)[..., None], 3, 2
                )
            else:
                rgb = np.asarray(upright.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageFileError(f"{path} is not a readable image ({error})") from error
    return Photo(np.ascontiguousarray(rgb).copy(), alpha, grey, orientation not in (None, 1), source_format)


def write_photo(photo: Photo, rgb: np.ndarray, path: str | Path) -> Path:
    """Write ``rgb`` (``H x W x 3`` uint8) like ``photo`` was stored (grey, alpha, format), atomically."""
    path = Path(path)
    image = Image.fromarray(rgb)
    if photo.grey:
        image = image.convert("L")
    if photo.alpha is not None:
        image.putalpha(Image.fromarray(photo.alpha))
        if photo.grey:
            image = image.convert("LA")
    fmt = FORMATS.get(path.suffix.lower(), photo.format)
    options = {"quality": JPEG_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if not photo.grey else "L")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        image.save(temporary, format=fmt, **options)
    return path
