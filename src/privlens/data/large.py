"""Very large images without ever holding them whole: libvips (``pyvips``) streams them in strips.

A PNG cannot be decoded at a reduced scale, and Pillow decodes it whole (4 bytes per pixel: a
12000 x 12000 photo takes 576 MB before anything else happens). libvips decodes it in strips of
rows and lets each strip flow through the next operation (a shrink, a crop, an insert, a writer),
so only a few strips exist at a time. This module offers three such paths:

* :func:`shrink_on_load`: the file shrunk by an integer factor (box average, the output size of
  Pillow's ``reduce``) as a Pillow image, used by :func:`privlens.data.images.open_image`;
* :class:`LargePhoto`: a photo read upright as 8-bit RGB pieces (a reduced copy for detection,
  full-resolution regions around faces) and written back at full size with some regions
  replaced (streamed insert and save), used by :mod:`privlens.anonymize.regions`;
* :func:`available`: whether libvips could be loaded (when it cannot, callers fall back to
  Pillow and memory grows with the image again; :func:`unavailable_reason` says why).

Photos whose EXIF orientation needs a rotation or a vertical flip cannot be streamed row by row:
:class:`LargePhoto` then opens them for random access (libvips holds the decoded 8-bit image, about
3 bytes per pixel). libvips runs on one thread here, with its operation cache off.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_VIPS: Any = None
_REASON: str | None = None
_TRIED = False

#: EXIF orientation -> the Pillow transpose that makes the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Orientations that a row-by-row stream can apply (none, or a mirror of each row).
STREAMABLE_ORIENTATIONS = (1, 2)
#: Output formats libvips writes here (by suffix); others go through Pillow.
SAVERS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}
JPEG_QUALITY = 95


class LargeImageError(ValueError):
    """A large image could not be decoded or written by libvips (the message names the file)."""


def vips():
    """The ``pyvips`` module (one thread, no operation cache), or ``None`` if libvips cannot load."""
    global _VIPS, _REASON, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            import pyvips

            pyvips.concurrency_set(1)
            pyvips.cache_set_max(0)
            _VIPS = pyvips
        except (ImportError, OSError) as error:  # pyvips absent, or its libvips binary missing
            _REASON = f"{type(error).__name__}: {error}"
    return _VIPS


def available() -> bool:
    """Whether libvips is usable (``pyvips`` with ``pyvips-binary`` or a system libvips)."""
    return vips() is not None


def unavailable_reason() -> str | None:
    """Why libvips could not be loaded (``None`` when it could)."""
    vips()
    return _REASON


def _eight_bit(image, keep_16bit_grey: bool = False):
    """A libvips image as uchar sRGB/grey (+ alpha): CMYK converted, 16 bits cut to their high
    byte (as Pillow reads 16-bit colour PNGs), unless ``keep_16bit_grey`` and it is 16-bit grey."""
    if image.interpretation == "cmyk":
        image = image.colourspace("srgb")
    if image.format == "ushort":
        if keep_16bit_grey and image.bands == 1:
            return image
        image = (image >> 8).cast("uchar")
    elif image.format != "uchar":
        raise LargeImageError(f"{image.format} pixels are not supported")
    return image.copy(interpretation="b-w" if image.bands <= 2 else "srgb")


def orientation_of(image) -> int:
    """The EXIF orientation (1..8) libvips read from a file's header; 1 when there is none."""
    if "orientation" not in image.get_fields():
        return 1
    value = int(image.get("orientation"))
    return value if 1 <= value <= 8 else 1


def _load(path: Path, access: str = "sequential"):
    """Open ``path`` with libvips (header only); ``None`` when libvips cannot read this format."""
    pyvips = vips()
    try:
        return pyvips.Image.new_from_file(str(path), access=access, fail_on="error")
    except pyvips.Error:
        return None


def shrink_on_load(path: str | Path, factor: int) -> tuple[Image.Image, int] | None:
    """``path`` shrunk by an integer ``factor`` (box average) while it is decoded, as a Pillow image
    (mode L, LA, RGB, RGBA or I;16 for 16-bit grey) of Pillow ``reduce``'s size (partial boxes at
    the right and bottom edges repeat the edge pixels), then turned upright; with the EXIF
    orientation that was applied (1: none).

    Returns ``None`` when libvips is unavailable or cannot read this format (use Pillow); raises
    :class:`LargeImageError` when the file is damaged.
    """
    if vips() is None:
        return None
    path = Path(path)
    image = _load(path)
    if image is None:
        return None
    orientation = orientation_of(image)
    try:
        image = _eight_bit(image, keep_16bit_grey=True)
        width, height = image.width, image.height
        padded_w, padded_h = math.ceil(width / factor) * factor, math.ceil(height / factor) * factor
        if (padded_w, padded_h) != (width, height):
            image = image.embed(0, 0, padded_w, padded_h, extend="copy")
        if image.bands in (2, 4):  # colour averaged weighted by alpha, as Pillow's reduce does
            image = image.premultiply().shrink(factor, factor).unpremultiply().cast("uchar")
        else:
            image = image.shrink(factor, factor)
        array = image.numpy()
    except vips().Error as error:
        raise LargeImageError(f"{path} is not a readable image ({_first_line(error)})") from error
    picture = Image.fromarray(array if array.ndim == 2 or array.shape[2] > 1 else array[..., 0])
    if orientation in UPRIGHT:
        picture = picture.transpose(UPRIGHT[orientation])
    return picture, orientation


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Large images pass through many short-lived buffers (libvips strips, detector activations);
    glibc keeps what they freed for reuse, which would count as resident memory for the rest of
    the run."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: nothing to do
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300]


@dataclass(frozen=True)
class Patch:
    """A replaced region of a photo: its top-left corner ``(x, y)`` in upright photo pixels and its
    ``rgb`` pixels (``h x w x 3`` uint8)."""

    x: int
    y: int
    rgb: np.ndarray


class LargePhoto:
    """A photo too large to hold whole, read and written in pieces (see the module notes).

    Pixels come as upright 8-bit RGB like :func:`privlens.data.photos.read_photo` (grey repeated
    on three channels, alpha left out); ``grey`` and ``alpha`` say how the file stores them, and
    :meth:`write` keeps that. ``width`` and ``height`` are the upright size.
    """

    def __init__(self, path: str | Path) -> None:
        if vips() is None:
            raise LargeImageError(f"libvips is unavailable ({unavailable_reason()})")
        self.path = Path(path)
        probe = _load(self.path)
        if probe is None:
            raise LargeImageError(f"{self.path}: libvips cannot read this format")
        self.orientation = orientation = orientation_of(probe)
        self.streamed = orientation in STREAMABLE_ORIENTATIONS
        self._random = None
        self.grey = probe.bands <= 2 and probe.interpretation != "cmyk"
        self.alpha = probe.bands in (2, 4) and probe.interpretation != "cmyk"
        swap = orientation in (5, 6, 7, 8)
        self.width, self.height = (probe.height, probe.width) if swap else (probe.width, probe.height)

    def _upright(self):
        """A fresh upright 8-bit libvips image of the whole photo (lazy: nothing decoded yet)."""
        if self.streamed:
            image = _load(self.path)
            if image is None:
                raise LargeImageError(f"{self.path}: libvips cannot read this file")
            image = _eight_bit(image)
            return image.fliphor() if self.orientation == 2 else image
        if self._random is None:  # rotations need random access: decoded once, then reused
            image = _load(self.path, access="random")
            if image is None:
                raise LargeImageError(f"{self.path}: libvips cannot read this file")
            self._random = _eight_bit(image.copy_memory()).autorot()
        return self._random

    def _colour(self, image):
        """The colour bands only, as RGB (grey repeated)."""
        colour = image.extract_band(0, n=image.bands - 1) if self.alpha else image
        return colour.bandjoin([colour, colour]) if self.grey else colour

    def _numpy(self, image) -> np.ndarray:
        try:
            return np.ascontiguousarray(image.numpy())
        except vips().Error as error:
            raise LargeImageError(f"{self.path} is not a readable image ({_first_line(error)})") from error

    def reduced(self, max_side: int) -> tuple[np.ndarray, float, float]:
        """An RGB copy whose longer side is ``max_side`` (at most the photo's), with the photo's
        pixels per copy pixel along x and y. Shrinking is an area average then Lanczos (libvips
        ``resize``)."""
        scale = min(1.0, max_side / max(self.width, self.height))
        image = self._colour(self._upright())
        if scale < 1.0:
            image = image.resize(scale)
        array = self._numpy(image)
        return array, self.width / array.shape[1], self.height / array.shape[0]

    def region(self, box: tuple[int, int, int, int], shrink: int = 1) -> np.ndarray:
        """The RGB pixels of ``box`` = ``(x0, y0, x1, y1)`` (upright photo pixels, exclusive ends),
        shrunk by the integer ``shrink`` (box average; the size rounded down) while read."""
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= self.width and 0 <= y0 < y1 <= self.height):
            raise ValueError(f"region {box} lies outside the {self.width} x {self.height} photo")
        image = self._colour(self._upright()).crop(x0, y0, x1 - x0, y1 - y0)
        if shrink > 1:
            image = image.shrink(shrink, shrink)
        return self._numpy(image)

    def write(self, target: str | Path, patches: list[Patch]) -> Path:
        """Write the photo to ``target`` (format from its suffix, see :data:`SAVERS`) with
        ``patches`` pasted, streamed, atomically; grey stays grey, alpha is kept (dropped in JPEG),
        metadata is not copied. Patches must not overlap."""
        from privlens.files import atomic_path

        pyvips = vips()
        release_memory()
        target = Path(target)
        saver = SAVERS.get(target.suffix.lower())
        if saver is None:
            raise LargeImageError(f"{target}: libvips does not write {target.suffix!r} files here")
        image = self._upright()
        alpha = image.extract_band(image.bands - 1) if self.alpha else None
        colour = image.extract_band(0, n=image.bands - 1) if self.alpha else image
        for patch in patches:
            pixels = patch.rgb
            if self.grey:  # the same conversion as write_photo (Pillow's ITU-R 601-2 luma)
                pixels = np.asarray(Image.fromarray(pixels).convert("L"))
            piece = pyvips.Image.new_from_array(np.ascontiguousarray(pixels))
            colour = colour.insert(piece, patch.x, patch.y)
        if alpha is not None and saver != "jpeg":
            colour = colour.bandjoin(alpha)
        colour = colour.copy(interpretation="b-w" if self.grey else "srgb")
        options: dict[str, Any] = {"keep": 0}  # no EXIF, XMP, ICC: nothing of the original's metadata
        if saver in ("jpeg", "webp"):
            options["Q"] = JPEG_QUALITY
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as temporary:
                getattr(colour, f"{saver}save")(temporary, **options)
        except pyvips.Error as error:
            raise LargeImageError(f"{target} could not be written ({_first_line(error)})") from error
        return target
