"""Identity distance DIS: the l2 distance between face embeddings of an original and its
de-identified version (larger = better hidden identity).

Backends:

* ``dlib``: dlib's face-recognition ResNet (the ``face_recognition`` library's model), 128-d, on
  the best dlib-HOG face aligned by the 68-point shape; the paper's "FR" column. The usual
  same-person threshold is 0.6.
* ``facenet-vggface2`` / ``facenet-casia``: facenet-pytorch ``InceptionResnetV1`` (512-d, unit
  norm) on the best MTCNN face cropped to 160 px. Weights: a local file (option or environment
  variable, see :mod:`privlens.eval.weights`) or facenet-pytorch's own download; otherwise
  :class:`MetricUnavailableError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from privlens.eval.weights import (
    DOWNLOAD_ERRORS,
    MetricUnavailableError,
    WeightsFileError,
    download_failed,
    load_state_dict,
    local_weights,
)
from privlens.faces import models
from privlens.faces.convert import to_uint8_rgb
from privlens.faces.detect import Face, best_face

IDENTITY_BACKENDS = ("dlib", "facenet-vggface2", "facenet-casia")
FACENET_DATASETS = {"facenet-vggface2": "vggface2", "facenet-casia": "casia-webface"}
FACENET_URLS = {
    "facenet-vggface2": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
    "facenet-casia": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",
}
FACENET_CROP_PX = 160


class DlibEmbedder:
    """128-d dlib embeddings of the best HOG face (``None`` when no face is found)."""

    name = "dlib"
    detector = "dlib"

    def embed_face(self, image: torch.Tensor | np.ndarray, face: Face) -> np.ndarray:
        import dlib

        array = to_uint8_rgb(image)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        shape = models.shape_predictor_68()(array, dlib.rectangle(x0, y0, x1, y1))
        return np.array(models.face_recognizer().compute_face_descriptor(array, shape), dtype=np.float64)

    def embed(
        self, images: list[torch.Tensor], faces: list[Face | None] | None = None
    ) -> list[np.ndarray | None]:
        faces = faces if faces is not None else [best_face(image, self.detector) for image in images]
        return [None if f is None else self.embed_face(im, f) for im, f in zip(images, faces, strict=True)]


def load_facenet(backend: str, weights: str | Path | None = None) -> torch.nn.Module:
    """facenet-pytorch's InceptionResnetV1 with ``backend``'s weights, in eval mode on the CPU."""
    if backend not in FACENET_DATASETS:
        raise ValueError(f"unknown FaceNet backend {backend!r}; expected one of {sorted(FACENET_DATASETS)}")
    try:
        from facenet_pytorch import InceptionResnetV1
    except ImportError as error:
        raise MetricUnavailableError(backend, f"facenet-pytorch is not importable ({error})") from error
    path = local_weights(backend, weights)
    if path is not None:
        model = InceptionResnetV1(pretrained=None, classify=False)
        state = {k: v for k, v in load_state_dict(path).items() if not k.startswith("logits.")}
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise WeightsFileError(f"{path}: not InceptionResnetV1 weights ({error})") from error
    else:
        try:  # facenet-pytorch's own cache (TORCH_HOME/checkpoints) or download
            model = InceptionResnetV1(pretrained=FACENET_DATASETS[backend], classify=False)
        except DOWNLOAD_ERRORS as error:
            raise download_failed(backend, FACENET_URLS[backend], error) from error
    return model.eval()


class FacenetEmbedder:
    """512-d FaceNet embeddings of the best MTCNN face, cropped square to 160 px."""

    detector = "mtcnn"

    def __init__(self, backend: str, weights: str | Path | None = None, batch_size: int = 16) -> None:
        self.name = backend
        self.model = load_facenet(backend, weights)
        self.batch_size = batch_size

    @staticmethod
    def crop(image: torch.Tensor, face: Face) -> torch.Tensor:
        """The face box (clipped to the image) resized to 160 px, standardised as FaceNet expects."""
        height, width = image.shape[-2:]
        x0, y0, x1, y1 = face.box
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
        patch = image[:, y0:y1, x0:x1][None]
        patch = F.interpolate(patch, size=(FACENET_CROP_PX,) * 2, mode="bilinear", antialias=True)[0]
        return (patch * 255.0 - 127.5) / 128.0

    def embed(
        self, images: list[torch.Tensor], faces: list[Face | None] | None = None
    ) -> list[np.ndarray | None]:
        faces = faces if faces is not None else [best_face(image, self.detector) for image in images]
        crops = [
            (i, self.crop(image, f)) for i, (image, f) in enumerate(zip(images, faces, strict=True)) if f
        ]
        out: list[np.ndarray | None] = [None] * len(images)
        with torch.no_grad():
            for start in range(0, len(crops), self.batch_size):
                chunk = crops[start : start + self.batch_size]
                vectors = self.model(torch.stack([c for _, c in chunk])).numpy().astype(np.float64)
                for (i, _), vector in zip(chunk, vectors, strict=True):
                    out[i] = vector
        return out


def make_embedder(backend: str, weights: str | Path | None = None):
    """An embedder for ``backend`` (raises :class:`MetricUnavailableError` when weights are absent)."""
    if backend == "dlib":
        return DlibEmbedder()
    if backend in FACENET_DATASETS:
        return FacenetEmbedder(backend, weights)
    raise ValueError(f"unknown identity backend {backend!r}; expected one of {', '.join(IDENTITY_BACKENDS)}")


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """l2 distance between two embeddings."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def identity_distances(
    originals: list[torch.Tensor], deidentified: list[torch.Tensor], backend: str = "dlib", weights=None
) -> list[float | None]:
    """DIS per pair; ``None`` where either side has no detected face."""
    embedder = make_embedder(backend, weights)
    first, second = embedder.embed(originals), embedder.embed(deidentified)
    return [
        None if a is None or b is None else identity_distance(a, b)
        for a, b in zip(first, second, strict=True)
    ]
