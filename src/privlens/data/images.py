"""Reading and writing image files as float RGB tensors in [0, 1] (``[3, H, W]``).

Grey images are replicated to three channels, RGBA images are composited on white (alpha is
transparency, not content), 16-bit images are scaled by 65535, EXIF orientation is applied.
Every failure is an :class:`ImageFileError` naming the file.

Memory is bounded by the *output* size: a file is decoded at 8 bits per channel (JPEGs at a
reduced DCT scale) and shrunk by an integer factor before it becomes float, and files with more
than :data:`DEFAULT_MAX_PIXELS` pixels (``$PRIVLENS_MAX_PIXELS``) are refused from their header,
before decoding. Other formats (PNG above all) of :data:`STREAM_MIN_PIXELS` pixels or more are
shrunk *while* they are decoded, in strips, by libvips (:mod:`privlens.data.large`), so they never
exist whole in memory; without libvips, Pillow decodes them whole first. Writes are atomic.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from privlens.files import atomic_path

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


#: Images with more pixels than this are refused (per file, so a folder job skips them).
#: Override with ``$PRIVLENS_MAX_PIXELS`` or the ``max_pixels`` argument.
DEFAULT_MAX_PIXELS = 150_000_000
#: Non-JPEG files of at least this many pixels that are to be shrunk are decoded by libvips in
#: strips (Pillow would first hold them whole, 4 bytes per pixel: 64 MB at this size).
STREAM_MIN_PIXELS = 16_000_000
_FALLBACK_NOTED = False

_PALETTE_MODES = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1")


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$PRIVLENS_MAX_PIXELS``, else the default."""
    if max_pixels is not None:
        return int(max_pixels)
    value = os.environ.get("PRIVLENS_MAX_PIXELS", "").replace("_", "")
    if value:
        try:
            return int(float(value))
        except ValueError:
            raise ImageFileError(f"$PRIVLENS_MAX_PIXELS must be a number, got {value!r}") from None
    return DEFAULT_MAX_PIXELS


def _reduction_factor(width: int, height: int, size: int | None, max_side: int | None) -> int:
    """Integer factor by which a ``width x height`` image may shrink before it becomes float.

    With ``size`` (the square the caller wants) the centre square keeps at least ``2 * size``
    pixels per side, so the final antialiased resize still sees every detail it can show; with
    ``max_side`` the longest side ends at or below ``max_side``.
    """
    factor = 1
    if size is not None:
        factor = max(factor, min(width, height) // (2 * size))
    if max_side is not None and max(width, height) > max_side:
        factor = max(factor, math.ceil(max(width, height) / max_side))
    return factor


def open_image(
    path: str | Path,
    size: int | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode an image file into a Pillow image, shrunk by an integer factor *before* any float copy.

    The header is checked first: more than ``max_pixels`` pixels (see :func:`max_pixels_limit`)
    is an :class:`ImageFileError`, never a decompression bomb. JPEGs are decoded at a reduced
    scale (``draft``); other formats are decoded once at 8 bits per channel and reduced with
    :meth:`PIL.Image.Image.reduce` (box average). EXIF orientation is applied. ``size`` and
    ``max_side`` set the factor as in :func:`_reduction_factor`. The result is RGB, RGBA, L, LA
    or I;16 (16-bit grey).
    """
    return open_image_info(path, size, max_side, max_pixels)[0]


def open_image_info(
    path: str | Path,
    size: int | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> tuple[Image.Image, int, str]:
    """:func:`open_image`, plus the file's EXIF orientation (1 when none; already applied to the
    image) and its format (``PNG``, ``JPEG``, ...), found without decoding the file a second time."""
    path = Path(path)
    limit = max_pixels_limit(max_pixels)
    with _image_errors(path), _open_checked(path, limit) as handle:
        width, height = handle.size
        factor = _reduction_factor(width, height, size, max_side)
        if factor >= 2 and handle.format != "JPEG" and width * height >= STREAM_MIN_PIXELS:
            streamed = _shrink_streamed(path, factor)
            if streamed is not None:
                return streamed[0], streamed[1], handle.format or ""
            _note_pillow_fallback(path)
        if factor >= 2 and handle.format == "JPEG":
            handle.draft(handle.mode, (width // factor, height // factor))
            factor = max(1, factor * handle.size[0] // width)
        handle.load()
        orientation = handle.getexif().get(0x0112, 1)  # loaded: no second decode
        file_format = handle.format or ""
        image = _normalise_mode(handle, path)
        if factor >= 2:
            image = _reduce(image, factor)
        image = ImageOps.exif_transpose(image)
    return image, orientation if orientation in range(1, 9) else 1, file_format


@contextlib.contextmanager
def _image_errors(path: Path) -> Iterator[None]:
    """Reading ``path`` with Pillow: its size warnings silenced (the pixel limit is checked
    instead), its errors turned into one :class:`ImageFileError` naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageFileError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageFileError(f"{path} is refused as a decompression bomb ({error})") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageFileError(f"{path} is not a readable image ({error})") from error


def _open_checked(path: Path, limit: int) -> Image.Image:
    """``Image.open`` (header only) with the existence, emptiness and pixel-limit checks."""
    if not path.exists():
        raise ImageFileError(f"image not found: {path}")
    if not path.is_file():
        raise ImageFileError(f"not a file: {path}")
    handle = Image.open(path)
    width, height = handle.size
    if width * height > limit:
        handle.close()
        raise ImageFileError(
            f"{path} has {width} x {height} = {width * height / 1e6:.0f} megapixels, above "
            f"the limit of {limit / 1e6:.0f} (set $PRIVLENS_MAX_PIXELS to raise it)"
        )
    if width < 1 or height < 1:
        handle.close()
        raise ImageFileError(f"{path} is empty ({width} x {height} pixels)")
    return handle


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of an image file as stored (before EXIF orientation), from its header
    only; :class:`ImageFileError` when it is unreadable or above the pixel limit."""
    path = Path(path)
    with _image_errors(path), _open_checked(path, max_pixels_limit(max_pixels)) as handle:
        return handle.size


def _shrink_streamed(path: Path, factor: int) -> tuple[Image.Image, int] | None:
    """The file shrunk by ``factor`` while libvips decodes it, and its EXIF orientation (applied);
    ``None`` to use Pillow instead (libvips unavailable, or a format it does not read)."""
    from privlens.data import large

    try:
        return large.shrink_on_load(path, factor)
    except large.LargeImageError as error:
        raise ImageFileError(str(error)) from error
    finally:
        large.release_memory()  # libvips' strip buffers, freed but kept by the allocator


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Pillow's box-average ``reduce``; 16-bit grey (which it refuses) goes through 32-bit."""
    if image.mode != "I;16":
        return image.reduce(factor)
    reduced = np.asarray(image.convert("I").reduce(factor))
    return Image.fromarray(reduced.astype(np.uint16))


def _note_pillow_fallback(path: Path) -> None:
    """Warn (once per process) that a large file is decoded whole because libvips is missing."""
    from privlens.data import large

    global _FALLBACK_NOTED
    reason = large.unavailable_reason()
    if reason is not None and not _FALLBACK_NOTED:
        _FALLBACK_NOTED = True
        warnings.warn(
            f"{path}: decoded whole by Pillow before shrinking, libvips is unavailable ({reason}); "
            "install pyvips and pyvips-binary to keep memory bounded",
            RuntimeWarning,
            stacklevel=3,
        )


def _normalise_mode(image: Image.Image, path: Path) -> Image.Image:
    """Palette/CMYK/... -> RGB(A); 16-bit grey kept as I;16; 32-bit integer/float refused."""
    if image.mode in _PALETTE_MODES:
        transparent = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    if image.mode.startswith("I;16"):
        return image if image.mode == "I;16" else image.convert("I").convert("I;16")
    if image.mode in ("I", "F"):
        raise ImageFileError(f"{path}: 32-bit integer/float images are not supported")
    return image


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode == "I;16":
        return np.asarray(image).astype(np.uint16)
    return np.asarray(image)


def load_image(
    path: str | Path,
    size: int | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> torch.Tensor:
    """Read an image file as float RGB ``[3, H, W]`` in [0, 1]; optionally square it to ``size``.

    With ``size``, the image is centre-cropped to a square and resized (antialiased bilinear).
    Large files are shrunk on decode (see :func:`open_image`), so memory follows the output size,
    not the file's: a 12000 x 12000 PNG loaded at ``size=256`` never exists as float.
    ``max_side`` bounds the longest side of an unsized load (integer reduction, aspect kept).
    """
    image = open_image(path, size, max_side, max_pixels)
    try:
        tensor = array_to_tensor(_to_array(image))
    except ValueError as error:
        raise ImageFileError(f"{path}: {error}") from error
    finally:
        image.close()
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
    """Write a ``[C, H, W]`` (C = 1 or 3) float image in [0, 1] as an 8-bit PNG/JPEG, atomically."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a [C, H, W] image with C = 1 or 3, got {tuple(image.shape)}")
    path = Path(path)
    array = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).round()
    array = array.astype(np.uint8)
    picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    file_format = Image.registered_extensions().get(path.suffix.lower())
    if file_format is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}")
    with atomic_path(path) as temporary:  # never a truncated file in place of a good one
        picture.save(temporary, format=file_format)
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
            image = load_image(path, size)
        except ImageFileError as error:
            yield path, error
            continue
        except MemoryError:
            yield path, ImageFileError(f"{path} is too large to load in the memory available")
            continue
        yield path, image
