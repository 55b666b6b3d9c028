"""68-point facial landmarks with dlib's shape predictor (iBUG 300-W layout).

Points are ``[68, 2]`` float arrays of (x, y) pixels, origin at the centre of the top-left pixel.
Index groups (0-based; "right" is the subject's right, which is on the image's left):

=========  =======  ===================
jaw        0-16     chin contour
brows      17-26    right brow 17-21, left brow 22-26
nose       27-35    bridge 27-30, nostrils 31-35
eyes       36-47    right eye 36-41, left eye 42-47
mouth      48-67    outer lip 48-59, inner lip 60-67
=========  =======  ===================

Five-point landmarks come from MTCNN (:attr:`privlens.faces.detect.Face.points5`).
"""

from __future__ import annotations

import numpy as np
import torch

from privlens.faces import models
from privlens.faces.convert import to_uint8_rgb
from privlens.faces.detect import Face, best_face

NUM_LANDMARKS = 68
LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose": tuple(range(27, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "mouth": tuple(range(48, 68)),
}


def landmarks68(
    image: torch.Tensor | np.ndarray, box: Face | tuple[float, float, float, float]
) -> np.ndarray:
    """dlib's 68 landmarks inside a face box (a :class:`Face` or ``(x0, y0, x1, y1)`` pixels)."""
    import dlib

    x0, y0, x1, y1 = box.box if isinstance(box, Face) else box
    rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
    shape = models.shape_predictor_68()(to_uint8_rgb(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def face_landmarks(
    image: torch.Tensor | np.ndarray, detector: str = "dlib"
) -> tuple[Face, np.ndarray] | None:
    """The best face and its 68 dlib landmarks, or ``None`` when no face is found.

    Any detector may propose the box (``dlib``, ``dlib-cnn``, ``mtcnn``); the points are always
    dlib's 68.
    """
    array = to_uint8_rgb(image)
    face = best_face(array, detector)
    if face is None:
        return None
    return face, landmarks68(array, face)


def eye_centres(points68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye on the image's left (subject's right, 36-41) and on the image's right."""
    points68 = np.asarray(points68, dtype=np.float64)
    return points68[36:42].mean(0), points68[42:48].mean(0)
