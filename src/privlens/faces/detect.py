"""Face detection behind one interface: dlib HOG, dlib CNN (mmod) and MTCNN.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the input image (x to the right, y down, origin at the
top-left pixel's centre), as each detector reports them: dlib's corners are integer and inclusive,
MTCNN's are floats. ``score`` is the detector's own confidence (HOG: SVM margin, CNN: mmod
confidence, MTCNN: probability); compare scores within one detector only.

Large photos are detected on a shrunk copy (``max_side``: the longer side after shrinking, area
averaging) and the boxes and points are mapped back to the input's pixels; ``min_face`` drops
faces whose box is narrower than that many input pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from privlens.faces import models
from privlens.faces.convert import to_uint8_rgb

DETECTORS = ("dlib", "dlib-cnn", "mtcnn")
Box = tuple[float, float, float, float]


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
    image: torch.Tensor | np.ndarray,
    detector: str = "dlib",
    upsample: int | None = None,
    min_face: float = 0.0,
    max_side: int | None = None,
) -> list[Face]:
    """Every face in one image, best score first.

    ``image``: ``[3, H, W]`` float in [0, 1] or ``H x W x 3`` uint8 RGB. ``upsample`` (dlib only):
    how many times the image is doubled before detection; default 1 for HOG (faces from about
    40 px), 0 for the CNN (slow on large images). ``min_face``: smallest box width kept, input
    pixels. ``max_side``: detect on a copy shrunk so that its longer side is at most this
    (``None``: full size); boxes and points come back in input pixels.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    if max_side is not None and max_side < 32:
        raise ValueError(f"max_side must be at least 32 px, got {max_side}")
    array = to_uint8_rgb(image)
    scale = 1.0
    if max_side is not None and max(array.shape[:2]) > max_side:
        import cv2

        scale = max_side / max(array.shape[:2])
        small = (max(1, round(array.shape[1] * scale)), max(1, round(array.shape[0] * scale)))
        array = cv2.resize(array, small, interpolation=cv2.INTER_AREA)
    faces = _detect(array, detector, upsample)
    if scale != 1.0:
        faces = [_rescale(face, scale) for face in faces]
    faces = [face for face in faces if face.width >= min_face]
    return sorted(faces, key=lambda face: -face.score)


def _rescale(face: Face, scale: float) -> Face:
    """Map a face found on a copy shrunk by ``scale`` back to the input's pixel centres."""
    box = tuple(float((v + 0.5) / scale - 0.5) for v in face.box)
    points = None if face.points5 is None else (face.points5 + 0.5) / scale - 0.5
    return Face(box, face.score, face.detector, points)  # type: ignore[arg-type]


def _detect(array: np.ndarray, detector: str, upsample: int | None) -> list[Face]:
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
    return faces


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


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(boxes_a: Sequence[Box], boxes_b: Sequence[Box], threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of two box lists by IoU (best pair first), pairs above
    ``threshold`` only: ``[(index in a, index in b), ...]``."""
    pairs = sorted(
        ((iou(a, b), i, j) for i, a in enumerate(boxes_a) for j, b in enumerate(boxes_b)),
        reverse=True,
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for value, i, j in pairs:
        if value < threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matched.append((i, j))
    return matched
