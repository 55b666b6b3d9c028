"""FFHQ-style alignment from 68 landmarks: eyes level, face centred, fixed scale.

The crop is the square ("quad") that the FFHQ data set was cut with: centred a little below the
eyes, oriented along the eye-to-eye line, its half-side the larger of twice the eye distance and
1.8 times the eye-to-mouth distance. The image is warped onto a ``size x size`` square with an
affine map (bilinear; beyond the image border the edge pixels are repeated, never mirrored, and
:attr:`AlignedFace.valid` marks those pixels); when the crop is much larger than ``size`` the
region under it is first shrunk (area averaging) so no aliasing appears.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from privlens.faces.convert import to_uint8_rgb
from privlens.faces.landmarks import eye_centres


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop: ``image`` ``[3, size, size]`` float in [0, 1], its 68 ``landmarks`` (x, y
    pixels in the crop), ``matrix`` ``[2, 3]`` mapping source pixels to crop pixels, and ``valid``
    ``[size, size]`` bool, ``False`` where the crop reaches beyond the source image (edge-filled)."""

    image: torch.Tensor
    landmarks: np.ndarray
    matrix: np.ndarray
    valid: np.ndarray | None = None


def ffhq_quad(points68: np.ndarray) -> np.ndarray:
    """The FFHQ crop square ``[4, 2]`` (x, y): top-left, bottom-left, bottom-right, top-right."""
    points68 = np.asarray(points68, dtype=np.float64)
    if points68.shape != (68, 2):
        raise ValueError(f"expected [68, 2] landmarks, got {points68.shape}")
    eye_left, eye_right = eye_centres(points68)
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_mid = (points68[48] + points68[54]) / 2
    eye_to_mouth = mouth_mid - eye_mid
    # x axis of the crop: the eye line, tilted by the perpendicular of the eye-to-mouth vector.
    axis_x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    axis_x /= np.hypot(*axis_x)
    axis_x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    axis_y = np.array([-axis_x[1], axis_x[0]])
    centre = eye_mid + eye_to_mouth * 0.1
    return np.stack(
        [
            centre - axis_x - axis_y,
            centre - axis_x + axis_y,
            centre + axis_x + axis_y,
            centre + axis_x - axis_y,
        ]
    )


def align_face(image: torch.Tensor | np.ndarray, points68: np.ndarray, size: int = 256) -> AlignedFace:
    """Warp the FFHQ crop of ``image`` around ``points68`` to ``size x size``.

    Only the part of the image under the crop is read (a large photo is never shrunk whole). Crop
    pixels whose source lies outside the image repeat the nearest edge pixel (never a mirror
    image, which would paint a second face) and are ``False`` in :attr:`AlignedFace.valid`.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    array = to_uint8_rgb(image)
    height, width = array.shape[:2]
    points = np.asarray(points68, dtype=np.float64)
    quad = ffhq_quad(points)
    side = np.hypot(*(quad[3] - quad[0]))
    # the source region under the crop, one pixel of margin for the bilinear taps
    x0, y0 = np.floor(quad.min(0)).astype(int) - 1
    x1, y1 = np.ceil(quad.max(0)).astype(int) + 2
    x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    x1, y1 = max(min(x1, width), x0 + 1), max(min(y1, height), y0 + 1)
    region = array[y0:y1, x0:x1]
    local = quad - np.array([x0, y0], dtype=np.float64)
    shrink = int(np.floor(side / size / 1.5))
    prescale = 1.0
    if shrink > 1:
        small = (max(1, round(region.shape[1] / shrink)), max(1, round(region.shape[0] / shrink)))
        prescale = small[0] / region.shape[1]
        region = cv2.resize(region, small, interpolation=cv2.INTER_AREA)
        # pixel centres: x_small = (x + 0.5) * scale - 0.5
        local = (local + 0.5) * prescale - 0.5
    corners = np.float32([[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    matrix = cv2.getAffineTransform(np.float32(local[:3]), corners).astype(np.float64)
    warped = cv2.warpAffine(
        region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    # compose source -> region -> shrunk region -> crop into one source -> crop map
    full = np.empty((2, 3), dtype=np.float64)
    full[:, :2] = matrix[:, :2] * prescale
    offset = (np.array([-x0, -y0], dtype=np.float64) + 0.5) * prescale - 0.5
    full[:, 2] = matrix[:, :2] @ offset + matrix[:, 2]
    landmarks = points @ full[:, :2].T + full[:, 2]
    tensor = torch.from_numpy(warped.astype(np.float32).transpose(2, 0, 1) / 255.0)
    return AlignedFace(tensor.contiguous(), landmarks, full, inside_image(full, size, height, width))


def inside_image(matrix: np.ndarray, size: int, height: int, width: int) -> np.ndarray:
    """``[size, size]`` bool: which crop pixels of the source -> crop ``matrix`` (``[2, 3]``) take
    their value from inside a ``height x width`` source (pixel edges at -0.5 and W - 0.5)."""
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return (sx >= -0.5) & (sx <= width - 0.5) & (sy >= -0.5) & (sy <= height - 0.5)
