"""FFHQ-style alignment from 68 landmarks: eyes level, face centred, fixed scale.

The crop is the square ("quad") that the FFHQ data set was cut with: centred a little below the
eyes, oriented along the eye-to-eye line, its half-side the larger of twice the eye distance and
1.8 times the eye-to-mouth distance. The image is warped onto a ``size x size`` square with an
affine map (bilinear, reflected border); when the crop is much larger than ``size`` the image is
first shrunk (area averaging) so no aliasing appears.
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
    pixels in the crop), and ``matrix`` ``[2, 3]`` mapping source pixels to crop pixels."""

    image: torch.Tensor
    landmarks: np.ndarray
    matrix: np.ndarray


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
    """Warp the FFHQ crop of ``image`` around ``points68`` to ``size x size``."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    array = to_uint8_rgb(image)
    points = np.asarray(points68, dtype=np.float64)
    quad = ffhq_quad(points)
    side = np.hypot(*(quad[3] - quad[0]))
    shrink = int(np.floor(side / size / 1.5))
    prescale = 1.0
    if shrink > 1:
        height, width = array.shape[:2]
        small = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        array = cv2.resize(array, small, interpolation=cv2.INTER_AREA)
        prescale = small[0] / width
        # pixel centres: x_small = (x + 0.5) * scale - 0.5
        quad = (quad + 0.5) * prescale - 0.5
    corners = np.float32([[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    matrix = cv2.getAffineTransform(np.float32(quad[:3]), corners)
    warped = cv2.warpAffine(
        array, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    full = matrix.astype(np.float64).copy()
    if prescale != 1.0:  # compose with the source -> shrunk map
        full[:, :2] = matrix[:, :2] * prescale
        full[:, 2] = matrix[:, :2] @ np.array([0.5 * prescale - 0.5] * 2) + matrix[:, 2]
    landmarks = points @ full[:, :2].T + full[:, 2]
    tensor = torch.from_numpy(warped.astype(np.float32).transpose(2, 0, 1) / 255.0)
    return AlignedFace(tensor.contiguous(), landmarks, full)
