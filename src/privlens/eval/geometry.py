"""Face geometry kept by de-identification: landmark error, bounding-box error, detection rate.

Errors are in pixels of the original image. For two point sets of the same face the landmark
error is the mean over points of the l1 distance ``|dx| + |dy|``; the box error is the same over
the two box corners ``(x0, y0)``, ``(x1, y1)``. A pure horizontal shift by ``s`` pixels thus
gives an error of exactly ``s``. With ``dlib`` the points are dlib's 68, with ``mtcnn`` MTCNN's 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from privlens.faces.detect import Face, best_face
from privlens.faces.landmarks import landmarks68

GEOMETRY_DETECTORS = ("dlib", "mtcnn")


@dataclass(frozen=True)
class FaceGeometry:
    """The best face's box ``(x0, y0, x1, y1)`` and its points ``[68 or 5, 2]`` (x, y), pixels."""

    box: np.ndarray
    points: np.ndarray


def geometry_of(image: torch.Tensor | np.ndarray, face: Face) -> FaceGeometry:
    """Box and landmarks of a detected face (68 dlib points, or MTCNN's own 5)."""
    points = face.points5 if face.detector == "mtcnn" else landmarks68(image, face)
    return FaceGeometry(np.asarray(face.box, dtype=np.float64), np.asarray(points, dtype=np.float64))


def face_geometry(image: torch.Tensor | np.ndarray, detector: str = "dlib") -> FaceGeometry | None:
    """The best face's geometry with ``dlib`` or ``mtcnn``, or ``None`` without a face."""
    if detector not in GEOMETRY_DETECTORS:
        raise ValueError(f"detector must be one of {GEOMETRY_DETECTORS}, got {detector!r}")
    face = best_face(image, detector)
    return None if face is None else geometry_of(image, face)


def landmark_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over points of ``|dx| + |dy|`` (pixels) between two ``[K, 2]`` point sets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected two [K, 2] point sets of the same K, got {a.shape} and {b.shape}")
    return float(np.abs(a - b).sum(axis=1).mean())


def box_error(a: np.ndarray, b: np.ndarray) -> float:
    """Landmark error between the corners of two ``(x0, y0, x1, y1)`` boxes (pixels)."""
    return landmark_error(np.reshape(a, (2, 2)), np.reshape(b, (2, 2)))


def detection_rate(found: list[bool]) -> float:
    """Fraction of images in which a face was detected (0 for an empty list)."""
    return float(np.mean(found)) if len(found) else 0.0
