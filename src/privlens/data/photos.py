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
from PIL import Image

from privlens.data.images import open_image_info
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


def read_photo(path: str | Path, max_side: int | None = None) -> Photo:
    """Read ``path`` at full size, upright (EXIF orientation applied), through
    :func:`privlens.data.images.open_image` (its pixel limit refuses decompression bombs);
    :class:`~privlens.data.images.ImageFileError` if unreadable."""
    # max_side: shrunk on decode (integer factor); orientation and format come from that one decode
    image, orientation, source_format = open_image_info(path, max_side=max_side)
    source_format = source_format or FORMATS.get(Path(path).suffix.lower(), "PNG")
    mode = image.mode
    grey = mode in ("L", "LA", "I;16")
    alpha = None
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A")).copy()
    if mode == "I;16":
        rgb = np.repeat((np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)[..., None], 3, axis=2)
    else:  # one writable copy (convert() would copy an RGB image once more)
        rgb = np.array(image if mode == "RGB" else image.convert("RGB"))
    return Photo(rgb, alpha, grey, orientation not in (None, 1), source_format)


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
