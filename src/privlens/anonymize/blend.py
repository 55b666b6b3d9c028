"""Putting a new face back into the full frame: face mask, colour matching, inverse warp, blend.

Frames are ``H x W x 3`` uint8 RGB arrays, changed in place. A face lives in an aligned crop of
side ``S`` (:func:`privlens.faces.align.align_face`): ``matrix`` ``[2, 3]`` maps frame pixels to
crop pixels (x right, y down, origin at the top-left pixel's centre).

* :func:`face_mask`: ``[S, S]`` float weights in [0, 1], 1 on the face (the 68 landmarks' hull,
  raised to the hairline), dilated and feathered, 0 on crop pixels that lie outside the frame
  (edge-filled by the alignment: they never take part in the blend or the colour statistics).
* :func:`match_colours`: the new face's per-channel mean and spread moved onto the original's,
  measured under the mask.
* :func:`paste`: the crop warped back with the inverse of ``matrix`` into the frame region under
  the crop only, and blended with the mask. Frame pixels where the warped mask is 0 keep their
  exact bytes.
* :func:`pixelate`: the fail-safe: the masked region replaced by its average over coarse blocks
  (about 6 across the face), enlarged back bilinearly, so that no identity is left.

Every function returns the frame region it touched, ``(x0, y0, x1, y1)`` with exclusive ends, or
``None`` when the face lies outside the frame.

:func:`paste` and :func:`pixelate` take ``band_rows``: the region is then warped and blended in
horizontal bands of that many rows, so that no float copy of a large region exists (a 4500 px
face region would need about 1 GB of float buffers at once). Banded results can differ from the
unbanded ones by rounding (OpenCV's fixed-point warp coordinates): at most one level, in a few
pixels; unbanded (the default) is what normal-sized photos get.
"""

from __future__ import annotations

import cv2
import numpy as np

Region = tuple[int, int, int, int]

DILATE = 0.06
"""Dilation of the landmark hull, fraction of the crop side."""
FEATHER = 0.035
"""Gaussian feather (sigma) of the mask edge, fraction of the crop side."""
ALPHA_FLOOR = 1.0 / 512.0
"""Warped mask values below this are treated as 0 (those pixels keep their exact bytes)."""


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """``[K, 2]`` points around the face: the 68 landmarks plus the brows raised by 60 % of the
    brow-to-nose-tip distance (the forehead, which dlib's points leave out)."""
    points = np.asarray(landmarks, dtype=np.float64)
    brows = points[17:27]
    lift = points[30] - brows.mean(0)
    forehead = brows - 0.6 * lift
    return np.concatenate([points, forehead])


def face_mask(landmarks: np.ndarray, size: int, valid: np.ndarray | None = None) -> np.ndarray:
    """``[size, size]`` float32 blend weights for the face whose 68 crop landmarks are given."""
    mask = np.zeros((size, size), dtype=np.uint8)
    hull = cv2.convexHull(np.round(face_outline(landmarks)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    radius = max(1, round(DILATE * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.dilate(mask, kernel)
    sigma = max(0.5, FEATHER * size)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    # the feather must not lower the core: 1 wherever the undilated-by-feather mask was full
    soft = np.maximum(soft, cv2.erode(mask, kernel).astype(np.float32) / 255.0)
    if valid is not None:
        soft = soft * valid.astype(np.float32)
    return np.clip(soft, 0.0, 1.0)


def match_colours(new: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``new`` (``S x S x 3`` float in [0, 1]) with each channel's mean and standard deviation under
    ``mask > 0.5`` set to those of ``original`` (the spread ratio clipped to [0.5, 2])."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return new
    out = new.copy()
    for c in range(3):
        a, b = new[..., c][inside], original[..., c][inside]
        ratio = float(np.clip(b.std() / max(a.std(), 1e-3), 0.5, 2.0))
        out[..., c] = (new[..., c] - a.mean()) * ratio + b.mean()
    return np.clip(out, 0.0, 1.0)


def _region(matrix: np.ndarray, size: int, height: int, width: int) -> Region | None:
    """The frame rectangle under a crop (its corners mapped back), clipped to the frame."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(mapped.min(0)).astype(int)
    x1, y1 = np.ceil(mapped.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _to_region(image: np.ndarray, matrix: np.ndarray, region: Region, flags: int) -> np.ndarray:
    """Warp a crop-space ``image`` into the frame ``region`` (inverse of ``matrix``)."""
    x0, y0, x1, y1 = region
    shifted = matrix.copy()
    # frame (x, y) = region (u + x0, v + y0): crop = matrix @ (u + x0, v + y0)
    shifted[:, 2] = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    return cv2.warpAffine(
        image,
        shifted,
        (x1 - x0, y1 - y0),
        flags=flags | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def _blend(frame: np.ndarray, region: Region, new: np.ndarray, alpha: np.ndarray) -> Region | None:
    """Blend float ``new`` (region-sized, [0, 255]) into ``frame`` with ``alpha``; exact bytes kept
    where ``alpha`` is below :data:`ALPHA_FLOOR`. Returns the tight box of changed weights."""
    x0, y0, x1, y1 = region
    alpha = np.where(alpha < ALPHA_FLOOR, 0.0, np.minimum(alpha, 1.0)).astype(np.float32)
    rows, cols = np.nonzero(alpha.any(1))[0], np.nonzero(alpha.any(0))[0]
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    alpha, new = alpha[r0:r1, c0:c1, None], new[r0:r1, c0:c1]
    target = frame[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1]
    mixed = target.astype(np.float32) * (1.0 - alpha) + new * alpha
    mixed = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    target[...] = np.where(alpha > 0, mixed, target)
    return int(x0 + c0), int(y0 + r0), int(x0 + c1), int(y0 + r1)


def _bands(region: Region, band_rows: int | None) -> list[Region]:
    """``region`` whole, or cut into horizontal bands of ``band_rows`` rows."""
    x0, y0, x1, y1 = region
    if band_rows is None:
        return [region]
    return [(x0, y, x1, min(y + band_rows, y1)) for y in range(y0, y1, max(1, band_rows))]


def _union(a: Region | None, b: Region | None) -> Region | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def paste(
    frame: np.ndarray,
    face: np.ndarray,
    original: np.ndarray,
    mask: np.ndarray,
    matrix: np.ndarray,
    band_rows: int | None = None,
) -> Region | None:
    """Blend the new ``face`` (``S x S x 3`` float in [0, 1], crop space) into ``frame``.

    ``original`` is the aligned crop of the frame (same layout) for colour matching, ``mask``
    the :func:`face_mask` weights, ``band_rows`` see the module notes. Returns the frame box
    whose pixels may have changed.
    """
    height, width = frame.shape[:2]
    size = face.shape[0]
    region = _region(matrix, size, height, width)
    if region is None:
        return None
    matched = (match_colours(face, original, mask) * 255.0).astype(np.float32)
    weights = mask.astype(np.float32)
    changed = None
    for band in _bands(region, band_rows):
        new = _to_region(matched, matrix, band, cv2.INTER_LINEAR)
        alpha = _to_region(weights, matrix, band, cv2.INTER_LINEAR)
        changed = _union(changed, _blend(frame, band, new, alpha))
    return changed


def _block_average(patch: np.ndarray, block: int) -> np.ndarray:
    """``patch`` averaged over cells of about ``block x block`` pixels (area resampling)."""
    size = (max(1, patch.shape[1] // block), max(1, patch.shape[0] // block))
    return cv2.resize(patch, size, interpolation=cv2.INTER_AREA)


def _coarse(patch: np.ndarray, block: int) -> np.ndarray:
    """``patch`` averaged over ``block x block`` cells, then enlarged back smoothly (bilinear):
    no detail finer than a block survives."""
    small = _block_average(patch, block)
    return cv2.resize(small, (patch.shape[1], patch.shape[0]), interpolation=cv2.INTER_LINEAR)


def _enlarge_rows(small: np.ndarray, shape: tuple[int, int], top: int, bottom: int) -> np.ndarray:
    """Rows ``top:bottom`` of ``small`` enlarged bilinearly to ``shape`` (``H, W``; pixel centres
    aligned as in ``cv2.resize``, edges repeated), as float32, without enlarging the rest."""
    height, width = shape
    sx, sy = small.shape[1] / width, small.shape[0] / height
    # output (x, y) takes small ((x + 0.5) * sx - 0.5, (y + top + 0.5) * sy - 0.5)
    matrix = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, (top + 0.5) * sy - 0.5]])
    rows = cv2.warpAffine(
        small.astype(np.float32),
        matrix,
        (width, bottom - top),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return rows


def pixelate(
    frame: np.ndarray, mask: np.ndarray, matrix: np.ndarray, blocks: int = 6, band_rows: int | None = None
) -> Region | None:
    """Replace the masked face region of ``frame`` by ``blocks`` coarse blocks across the crop's
    face (then a blur of one block): the fail-safe for a face that could not be replaced.
    ``band_rows``: see the module notes."""
    height, width = frame.shape[:2]
    size = mask.shape[0]
    region = _region(matrix, size, height, width)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    patch = frame[y0:y1, x0:x1]
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop px per frame px
    block = max(2, int(round(size / scale / 2 / blocks)))  # the face is about half the crop
    hard = (mask > ALPHA_FLOOR).astype(np.float32)  # the whole dilated region, fully covered
    if band_rows is None:
        coarse = _coarse(patch, block).astype(np.float32)
        alpha = _to_region(hard, matrix, region, cv2.INTER_LINEAR)
        return _blend(frame, region, coarse, np.minimum(alpha * 4.0, 1.0))
    small = _block_average(patch, block)  # computed before any band is blended
    changed = None
    for band in _bands(region, band_rows):
        alpha = _to_region(hard, matrix, band, cv2.INTER_LINEAR)
        rows = _enlarge_rows(small, patch.shape[:2], band[1] - y0, band[3] - y0)
        changed = _union(changed, _blend(frame, band, rows, np.minimum(alpha * 4.0, 1.0)))
    return changed


def pixelate_box(
    frame: np.ndarray, box: tuple[float, float, float, float], margin: float = 0.25
) -> Region | None:
    """Pixelate a detector box grown by ``margin`` of its size on each side (when no landmarks or
    alignment are available for a face)."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    region = (
        max(0, int(np.floor(x0 - grow_x))),
        max(0, int(np.floor(y0 - grow_y))),
        min(width, int(np.ceil(x1 + grow_x)) + 1),
        min(height, int(np.ceil(y1 + grow_y)) + 1),
    )
    if region[2] <= region[0] or region[3] <= region[1]:
        return None
    rx0, ry0, rx1, ry1 = region
    patch = frame[ry0:ry1, rx0:rx1]
    block = max(2, int(round(max(x1 - x0, y1 - y0) / 6)))
    patch[...] = _coarse(patch, block)
    return region
