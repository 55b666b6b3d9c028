"""Scenes for the full-frame tests: embedded faces pasted at known places, a model-free painter
and an identity check. Imported by ``conftest.py`` and the tests of this folder."""

from __future__ import annotations

import numpy as np
import torch

SIZE = 64


BACKGROUND = (90, 120, 150)


def lfw_uint8(index: int) -> np.ndarray:
    """One embedded LFW face (150 px, grey as RGB) as an ``H x W x 3`` uint8 array."""
    from privlens.data.samples import lfw_faces

    return (lfw_faces()[index].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


def paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int, angle: float = 0.0) -> tuple:
    """Paste ``face`` resized to ``side`` (rotated by ``angle`` degrees, edges replicated) with its
    top-left corner at (x, y), clipped to the canvas; returns the pasted square (x0, y0, x1, y1)."""
    import cv2

    square = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    if angle:
        rotation = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), angle, 1.0)
        square = cv2.warpAffine(square, rotation, (side, side), borderMode=cv2.BORDER_REPLICATE)
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    canvas[y0:y1, x0:x1] = square[y0 - y : y1 - y, x0 - x : x1 - x]
    return (x0, y0, x1, y1)


def make_scene(width: int = 640, height: int = 480) -> tuple[np.ndarray, list[tuple]]:
    """A plain canvas with four LFW faces: upright, larger, rotated by 20 degrees, and one cut by
    the right border; returns the canvas and the pasted squares."""
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = BACKGROUND
    squares = [
        paste(canvas, lfw_uint8(1), 20, 20, 180),
        paste(canvas, lfw_uint8(2), 230, 200, 240),
        paste(canvas, lfw_uint8(5), 400, 10, 190, angle=20.0),
        paste(canvas, lfw_uint8(3), width - 130, height - 200, 200),
    ]
    return canvas, squares


class OraclePainter:
    """A model-free painter for testing the frame pipeline: an LFW face (another person) warped
    onto the dlib landmarks of each crop, at 64 px."""

    size = SIZE

    def __init__(self, reference_index: int = 40) -> None:
        from privlens.faces import face_landmarks

        self.reference = torch.from_numpy(lfw_uint8(reference_index).transpose(2, 0, 1) / 255.0).float()
        found = face_landmarks(self.reference)
        assert found is not None
        self.landmarks = found[1]
        self.calls: list[int] = []

    def paint(self, crops, landmarks, slots):
        from privlens.anonymize.warp import warp_reference

        self.calls.append(len(crops))
        return torch.stack([warp_reference(self.reference, self.landmarks, p, self.size) for p in landmarks])


def identity_distance_at(original: np.ndarray, output: np.ndarray, square: tuple) -> float:
    """dlib identity distance between the face found in ``original`` inside ``square`` and the
    output at the same box (whether or not a face is still found there)."""
    from privlens.eval.identity import DlibEmbedder
    from privlens.faces import detect_faces

    x0, y0, x1, y1 = square
    faces = [
        f
        for f in detect_faces(original, "dlib")
        if x0 - 10 <= (f.box[0] + f.box[2]) / 2 <= x1 + 10 and y0 - 10 <= (f.box[1] + f.box[3]) / 2 <= y1 + 10
    ]
    assert faces, f"no dlib face in the original at {square}"
    embedder = DlibEmbedder()
    a = embedder.embed_face(original, faces[0])
    b = embedder.embed_face(output, faces[0])
    return float(np.linalg.norm(a - b))
