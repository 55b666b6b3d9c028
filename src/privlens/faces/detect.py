"""Face detection behind one interface: dlib HOG, dlib CNN (mmod) and MTCNN.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the input image (x to the right, y down, origin at the
top-left pixel's centre), as each detector reports them: dlib's corners are integer and inclusive,
MTCNN's are floats. ``score`` is the detector's own confidence (HOG: SVM margin, CNN: mmod
confidence, MTCNN: probability); compare scores within one detector only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from privlens.faces import models
from privlens.faces.convert import to_uint8_rgb

DETECTORS = ("dlib", "dlib-cnn", "mtcnn")


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``points5`` (MTCNN only) is ``[5, 2]`` (x, y) pixels: the eye on the image's left, the eye on
    the image's right, the nose tip, the mouth corner on the left, the mouth corner on the right.
    """

    box: tuple[float, float, float, float]
    score: float
    detector: str
    points5: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def detect_faces(
    image: torch.Tensor | np.ndarray, detector: str = "dlib", upsample: int | None = None
) -> list[Face]:
    """Every face in one image, best score first.

    ``image``: ``[3, H, W]`` float in [0, 1] or ``H x W x 3`` uint8 RGB. ``upsample`` (dlib only):
    how many times the image is doubled before detection; default 1 for HOG (faces from about
    40 px), 0 for the CNN (slow on large images).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    array = to_uint8_rgb(image)
    if detector == "dlib":
        rects, scores, _ = models.hog_detector().run(array, 1 if upsample is None else upsample, 0.0)
        faces = [
            Face((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s), detector)
            for r, s in zip(rects, scores, strict=True)
        ]
    elif detector == "dlib-cnn":
        found = models.cnn_detector()(array, 0 if upsample is None else upsample)
        faces = [
            Face(
                (float(d.rect.left()), float(d.rect.top()), float(d.rect.right()), float(d.rect.bottom())),
                float(d.confidence),
                detector,
            )
            for d in found
        ]
    else:
        faces = _mtcnn_faces(array)
    return sorted(faces, key=lambda face: -face.score)


def _mtcnn_faces(array: np.ndarray) -> list[Face]:
    with torch.no_grad():
        boxes, probs, points = models.mtcnn().detect(array, landmarks=True)
    if boxes is None:
        return []
    # facenet-pytorch returns object arrays: cast to float.
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    return [
        Face(tuple(float(v) for v in box), float(p), "mtcnn", pts)
        for box, p, pts in zip(boxes, probs, points, strict=True)
    ]


def best_face(
    image: torch.Tensor | np.ndarray, detector: str = "dlib", upsample: int | None = None
) -> Face | None:
    """The highest-scoring face, or ``None`` when there is none."""
    faces = detect_faces(image, detector, upsample)
    return faces[0] if faces else None
